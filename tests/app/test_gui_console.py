"""The console keeps a bounded buffer and lays text out only while it is shown (a hidden
console fed for minutes was the kiosk's memory growth)."""

from __future__ import annotations

from app.gui.pages.console_page import MAX_LINES, ConsolePage


def test_a_hidden_console_buffers_bounded_and_fills_when_shown(qtbot, tmp_path) -> None:
    page = ConsolePage(timestamps=False)
    qtbot.addWidget(page)
    for i in range(3):  # hidden: lines are kept, the widget stays empty
        page.append_lines([(0.0, f"line {i * 1000 + k}") for k in range(1000)])
    page.append_lines([(0.0, f"late {k}") for k in range(MAX_LINES)])
    assert len(page.lines) == MAX_LINES and page.lines_total == 3000 + MAX_LINES
    assert page.text.document().blockCount() <= 1
    page.show()
    qtbot.waitExposed(page)
    assert page.text.document().blockCount() == MAX_LINES
    assert page.text.toPlainText().splitlines()[-1] == f"late {MAX_LINES - 1}"
    page.append_lines([(0.0, "shown")])  # shown: appended live
    assert page.text.toPlainText().endswith("shown")
    out = tmp_path / "c.txt"
    assert page.save(str(out)) and out.read_text().splitlines()[-1] == "shown"
    page.hide()
    assert page.text.document().blockCount() <= 1
