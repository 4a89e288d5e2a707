"""Any screen from 1024×600 up (issue 11, item 6), and the desktop basics (item 8)."""

from __future__ import annotations

from PySide6.QtWidgets import QApplication, QMessageBox

from app.gui import help_dialogs, window_state
from app.gui.launch import place_window
from app.gui.main_window import PAGES

SMALL = (1024, 600)


def test_the_window_fits_1024x600(qtbot, make_window) -> None:
    win = make_window(watch=False)
    win.live.build()
    hint = win.minimumSizeHint()
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], hint
    win.resize(*SMALL)
    qtbot.waitUntil(lambda: win.size().toTuple() == SMALL, timeout=3000)
    for key in PAGES:
        win.show_page(key)
        page = win.tabs.currentWidget()
        qtbot.waitUntil(lambda p=page: p.isVisible(), timeout=3000)
        # each page gets the room the tab area has, and asks for no more than that
        assert page.minimumSizeHint().width() <= win.tabs.width()
        assert page.minimumSizeHint().height() <= win.tabs.height()
        assert win.tabs.geometry().bottom() < win.statusBar().geometry().top()
    # the device panel's Connect button is on screen
    button = win.devices.connect_button
    pos = button.mapTo(win, button.rect().bottomRight())
    assert 0 <= pos.x() < SMALL[0] and 0 <= pos.y() < SMALL[1]


def test_the_device_sidebar_collapses_and_comes_back(qtbot, make_window) -> None:
    win = make_window(watch=False)
    narrow = win.screen().availableGeometry().width() < window_state.COMPACT_WIDTH
    assert window_state.sidebar_visible(win) != narrow  # small screens start collapsed
    window_state.toggle_sidebar(win, True)
    assert win.sidebar_button.isChecked() and win.sidebar_action.isChecked()
    win.sidebar_action.trigger()
    assert win.splitter.sizes()[0] == 0 and not win.sidebar_action.isChecked()
    assert not win.sidebar_button.isChecked()
    win.sidebar_button.click()  # the "Devices" button beside the page tabs
    assert win.splitter.sizes()[0] > 0 and win.sidebar_action.isChecked()


def test_the_window_opens_inside_the_screen(qtbot, make_window) -> None:
    win = make_window(watch=False, show=False, start=False)
    avail = win.screen().availableGeometry()
    win.resize(avail.width() + 400, avail.height() + 300)
    win.move(avail.x() + 200, avail.y() + 100)
    with qtbot.waitExposed(win):
        place_window(win, kiosk=False)
    least = win.minimumSizeHint()  # (the offscreen test screen is 800×800)
    assert win.width() <= max(avail.width(), least.width())
    assert win.height() <= max(avail.height(), least.height())
    assert win.width() < avail.width() + 400 and win.height() < avail.height() + 300
    assert avail.contains(win.geometry().topLeft())


def test_kiosk_has_a_title_and_no_developer_figures(qtbot, make_window) -> None:
    win = make_window(kiosk=True, demo=True, watch=False, start=False, show=False)
    assert win.kiosk_title.text() == window_state.KIOSK_DEMO_TITLE
    assert win.status.isHidden() and win.menuBar().isHidden()
    place_window(win, kiosk=True)
    qtbot.waitUntil(win.isFullScreen, timeout=3000)
    assert win.geometry() == win.screen().geometry()


def test_help_getting_started_and_about(qtbot, make_window, monkeypatch) -> None:
    win = make_window(watch=False)
    titles = {a.text().replace("&", "") for a in win.actions()}
    assert {"Getting started", "About TinyOps"} <= titles
    dialog = help_dialogs.getting_started(win)
    qtbot.addWidget(dialog)
    assert "Getting started" in dialog.windowTitle()
    assert dialog.width() <= win.screen().availableGeometry().width()
    dialog.close()
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "about", lambda parent, title, text: shown.append(text))
    next(a for a in win.actions() if a.text() == "About TinyOps").trigger()
    assert shown and "TinyOps" in shown[0] and "PySide6" in shown[0]
    QApplication.processEvents()


def test_the_window_still_fits_1024x600_with_live_data(qtbot, make_window) -> None:
    win = make_window(demo=True, watch=False)
    qtbot.waitUntil(lambda: win.live.built and win.live.store.total_samples > 20,
                    timeout=30000)
    qtbot.waitUntil(lambda: "samples/s" in win.status.rate_label.text(), timeout=10000)
    hint = win.minimumSizeHint()  # tiles, source line and status figures filled in
    assert hint.width() <= SMALL[0] and hint.height() <= SMALL[1], hint


def test_the_class_scores_plot_is_readable_at_1024x600(qtbot, make_window) -> None:
    from app.gui.live.plots import BIG_MIN_HEIGHT

    win = make_window(demo=True, watch=False)
    win.resize(*SMALL)
    win.show_page("live")
    dash = win.live.dashboard
    qtbot.waitUntil(lambda: "scores" in dash.panels and "cpu" in dash.panels, timeout=30000)
    qtbot.wait(300)
    plot = dash.panels["scores"].plot
    assert plot.size().height() >= BIG_MIN_HEIGHT  # was ~50 px under the small plots
    assert plot.mapRectToScene(plot.boundingRect()).bottom() <= dash.view.height()
