"""Latency estimate for a board (issue 14 item 5): the data file's sources, the arithmetic,
the registry's boards, and the measured figure beside the estimate."""

from __future__ import annotations

import json

import pytest

from model_tools.latency import (
    FAMILIES,
    board_core,
    estimate_latency,
    format_estimate,
    load_data,
    with_measured,
)


def test_every_core_family_has_a_sourced_range() -> None:
    data = load_data()
    assert set(FAMILIES) <= set(data["cores"])
    for name, core in data["cores"].items():
        lo, hi = core["cycles_per_mac"]
        assert 0 < lo <= hi, name
        assert len(core["source"]) > 30 and "checked" in core, name
        if "MLPerf" not in core["source"]:
            assert core["source"].startswith("derived") and core["derived"], name


def test_known_boards_exist_in_the_registry() -> None:
    from device_drivers import boards

    data = load_data()
    for board_id, entry in data["boards"].items():
        boards.get_board(board_id)  # raises if the id is not in the registry
        assert entry["core"] in data["cores"] and entry["clock_mhz"] > 0 and entry["source"]


def test_estimate_is_macs_times_cycles_over_clock() -> None:
    est = estimate_latency(12_000_000, board="nucleo_l4r5zi")
    lo, hi = load_data()["cores"]["cortex-m4f"]["cycles_per_mac"]
    assert est is not None and est["clock_mhz"] == 120 and est["core"] == "cortex-m4f"
    assert est["low_ms"] == pytest.approx(12e6 * lo / 120e3, rel=1e-3)
    assert est["high_ms"] == pytest.approx(12e6 * hi / 120e3, rel=1e-3)
    m7 = estimate_latency(12_000_000, board="nucleo_h743zi2")
    assert m7 is not None and m7["high_ms"] < est["low_ms"]  # faster core, faster clock
    fl = estimate_latency(12_000_000, board="nucleo_l4r5zi", dtype="float32")
    assert fl is not None and fl["low_ms"] > est["low_ms"]
    assert estimate_latency(1000, board="virtual") is None
    assert "ms at 120 MHz" in format_estimate(est)
    with pytest.raises(ValueError):
        estimate_latency(1, core="cortex-a53", clock_mhz=1000)


def test_measured_beside_estimate() -> None:
    est = estimate_latency(2_000_000, core="cortex-m4f", clock_mhz=64)
    assert est is not None
    inside = with_measured(est, int((est["low_ms"] + est["high_ms"]) / 2 * 1000))
    assert inside["within"] is True and inside["ratio"] == pytest.approx(1.0, abs=0.01)
    slow = with_measured(est, int(est["high_ms"] * 3000))
    assert slow["within"] is False and slow["ratio"] > 2
    assert with_measured(est, 0)["measured_ms"] is None  # no inference yet


def test_analyze_cli_shows_the_estimate(example_dir, capsys) -> None:
    from app.cli import main

    assert main(["analyze", str(example_dir / "model_int8.tflite"), "--board", "nano33ble",
                 "--json", "--no-measure"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    lat = result["latency"]
    assert lat["core"] == "cortex-m4f" and lat["clock_mhz"] == 64
    assert lat["macs"] == result["macs"] and 0 < lat["low_ms"] < lat["high_ms"]
    assert board_core("nano33ble") is not None
