"""The Records page lists provisioning records, filters them, exports what it shows."""

from __future__ import annotations

import csv

from fleet_ops.records import Record, open_store


def test_records_page_filters_and_exports(qtbot, make_window, tmp_path) -> None:
    store = open_store()
    for i, (serial, result) in enumerate([("SN-A", "ok"), ("SN-B", "failed"), ("SN-A", "ok")]):
        store.add(Record(operation="flash", result=result, port=f"/dev/ttyACM{i}",
                         board="pico", usb_serial=serial, backend="uf2",
                         artifact="model.tflite", artifact_sha256="ab" * 32,
                         verify="sha256 match", duration_s=1.5 + i))
    win = make_window(watch=False)
    page = win.records_page
    win.show_page("records")  # shown: loads on a worker
    qtbot.waitUntil(lambda: page.model.rowCount() == 3, timeout=5000)
    assert page.count.text() == "3 records"
    assert page.visible_rows()[0]["port"] == "/dev/ttyACM2"  # newest first
    page.filter.setText("sn-b")
    assert [r["usb_serial"] for r in page.visible_rows()] == ["SN-B"]
    assert page.count.text() == "1 of 3 records"
    out = tmp_path / "filtered.csv"
    assert page.export_csv(str(out)) == 1
    with out.open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 1 and rows[0]["usb_serial"] == "SN-B" and rows[0]["result"] == "failed"
    assert rows[0]["artifact_sha256"] == "ab" * 32  # the full digest in the file
    # an unwritable destination is reported, nothing half-written, no exception
    errors: list[object] = []
    page.ctx.report_error = errors.append  # type: ignore[method-assign]
    assert page.export_csv(str(tmp_path)) == 0  # a directory
    assert errors and "cannot write" in str(getattr(errors[0], "message", errors[0]))
