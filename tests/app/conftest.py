"""GUI test fixtures: isolated settings, no leaked windows, a main window, a virtual board.

Like napari's ``make_napari_viewer``: every test gets settings under its own
``TINYOPS_HOME`` (set per test by ``tests/conftest.py``), and a test FAILS if it leaves
top-level widgets behind (a leaked window keeps timers and threads alive and poisons the
tests after it).
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import shiboken6  # a hard dependency: a broken install fails here, it does not skip
from PySide6.QtCore import QCoreApplication, QEvent
from PySide6.QtWidgets import QApplication

from app.gui.devices import DeviceEntry


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than ~10 s (TensorFlow, long runs)")


def _flush_deletes(collect: bool = True) -> None:
    for _ in range(2):
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        QApplication.processEvents()
    if collect:
        gc.collect()
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)


_QT_INTERNAL = ("QTipLabel",)  # the application-wide tooltip window


def _top_levels() -> dict[int, object]:
    """Alive top-level widgets keyed by their C++ address (wrappers may be recreated)."""
    out = {}
    for w in QApplication.topLevelWidgets():
        try:
            if w.metaObject().className() in _QT_INTERNAL:
                continue
            out[shiboken6.getCppPointer(w)[0]] = w
        except RuntimeError:  # deleted on the C++ side meanwhile
            continue
    return out


@pytest.fixture(autouse=True)
def no_leaked_widgets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a GUI test (``test_gui*``) that leaves top-level widgets behind."""
    if not request.node.path.name.startswith("test_gui"):
        yield  # CLI tests in this folder need no QApplication
        return
    request.getfixturevalue("qapp")
    _flush_deletes(collect=False)
    before = set(_top_levels())
    yield
    _flush_deletes()
    leaked = [w for key, w in _top_levels().items() if key not in before]
    if leaked:
        names = [f"{w.metaObject().className()}({w.objectName() or w.windowTitle()!r})"
                 for w in leaked]
        for w in leaked:
            w.close()
            w.deleteLater()
        _flush_deletes()
        pytest.fail(f"test leaked top-level widgets: {', '.join(names)}", pytrace=False)


@pytest.fixture
def gui_settings(tinyops_home: Path):
    """Settings stored under this test's TINYOPS_HOME (asserted, so nothing leaks out)."""
    from app.gui.settings import Settings

    settings = Settings()
    assert Path(settings.path).is_relative_to(tinyops_home)
    return settings


class FakeEnumerator:
    """A hot-plug enumerator the test controls: plug() and unplug() entries."""

    def __init__(self, *entries: DeviceEntry) -> None:
        self._lock = threading.Lock()
        self._entries = {e.port: e for e in entries}
        self.calls = 0

    def plug(self, entry: DeviceEntry) -> None:
        with self._lock:
            self._entries[entry.port] = entry

    def unplug(self, port: str) -> None:
        with self._lock:
            self._entries.pop(port, None)

    def __call__(self) -> list[DeviceEntry]:
        with self._lock:
            self.calls += 1
            return list(self._entries.values())


@pytest.fixture
def fake_enumerator() -> FakeEnumerator:
    return FakeEnumerator()


@pytest.fixture
def make_window(qtbot, gui_settings) -> Iterator[Callable[..., object]]:
    """Build MainWindow(s) with given WindowOptions fields; shut down and deleted after."""
    from app.gui.main_window import MainWindow, WindowOptions

    windows: list[MainWindow] = []

    def make(show: bool = True, start: bool = True, **options: object) -> MainWindow:
        options.setdefault("auto_demo", False)
        options.setdefault("watch_interval_s", 0.1)
        win = MainWindow(WindowOptions(**options), settings=gui_settings)
        windows.append(win)
        if show:
            with qtbot.waitExposed(win):
                win.show()
        if start:
            win.start()
        return win

    yield make
    for win in windows:
        win.shutdown()
        win.close()
        win.deleteLater()
    windows.clear()


@pytest.fixture
def virtual_board(tmp_path: Path) -> Iterator[object]:
    """A real virtual board (SMP server on a pty) running the bundled example model."""
    from device_drivers.virtual.board import VirtualBoard

    board = VirtualBoard(board="nano33ble", state_dir=tmp_path / "vb-state")
    board.start()
    try:
        yield board
    finally:
        board.stop()
