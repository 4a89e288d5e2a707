"""The main window: devices on the left, pages on the right, messages and status around them."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QMainWindow, QSplitter, QTabWidget, QVBoxLayout, QWidget

from app.gui import tooltips, window_state
from app.gui.connection import DeviceLink, LinkInfo
from app.gui.context import AppContext
from app.gui.demo import DemoBoard
from app.gui.device_panel import DevicePanel
from app.gui.devices import DeviceEntry, DeviceWatcher, board_name
from app.gui.emulated import EmulatedBoard
from app.gui.homing import BoardEvents
from app.gui.live.mqtt_source import FleetLive
from app.gui.menus import PAGES, build_menus  # PAGES there: menus never import this module
from app.gui.message_bar import MessageBar
from app.gui.pages.console_page import ConsolePage
from app.gui.pages.flash_page import FlashPage
from app.gui.pages.fleet_page import FleetPage
from app.gui.pages.live_page import LivePage
from app.gui.pages.model_page import ModelPage
from app.gui.pages.records_page import RecordsPage
from app.gui.plain import plain_error
from app.gui.settings import Settings
from app.gui.status import StatusBar
from app.gui.workers import JobError, JobRunner

log = logging.getLogger(__name__)


@dataclass
class WindowOptions:
    demo: bool = False
    kiosk: bool = False
    port: str | None = None
    auto_demo: bool = True  # start the demo board when no board is plugged in
    watch: bool = True
    enumerate_fn: Callable[[], list[DeviceEntry]] | None = None
    watch_interval_s: float = 0.5
    demo_flash: bool = False  # flash the bundled example at demo start (it runs it already)


class MainWindow(QMainWindow):
    demo_started = Signal(str)  # port

    def __init__(self, options: WindowOptions | None = None,
                 settings: Settings | None = None) -> None:
        super().__init__()
        self.options = options or WindowOptions()
        self.settings = settings or Settings()
        self.setWindowTitle("TinyOps")
        self.runner = JobRunner(self)
        self.live = LivePage(self, window_s=self.settings.get("live/window_s"),
                             autoscale=self.settings.get("live/autoscale"))
        self.link = DeviceLink(self.live.store, self,
                               period_ms=self.settings.get("live/period_ms"))
        self.demo = DemoBoard()
        self.emulated = EmulatedBoard()
        self._demo_job = None
        self._demo_pending_flash = False
        self.homing = BoardEvents(self)
        self.message = MessageBar(self)
        self.devices = DevicePanel(self)
        self.ctx = AppContext(self.runner, self.link, self.settings, self.report_error,
                              self.report_info, self.devices.devices, self.devices.selected,
                              kiosk=self.options.kiosk, demo_port=lambda: self.demo.port)
        self.console = ConsolePage(self, timestamps=self.settings.get("console/timestamps"))
        self.model_page = ModelPage(self.ctx, self)
        self.flash_page = FlashPage(self.ctx, self)
        self.records_page = RecordsPage(self.ctx, self)
        self.tabs = QTabWidget(self)
        self.tabs.setDocumentMode(True)
        for page, title in ((self.model_page, "Model"), (self.flash_page, "Flash"),
                            (self.live, "Live"), (self.console, "Console"),
                            (self.records_page, "Records")):
            self.tabs.addTab(page, title)
        right = QWidget(self)
        rl = self.right_layout = QVBoxLayout(right)
        rl.setContentsMargins(0, 4, 4, 0)
        rl.setSpacing(4)
        rl.addWidget(self.tabs, 1)
        self.message.float_over(right)  # over the pages, never moving them
        self.splitter = QSplitter(Qt.Orientation.Horizontal, self)
        self.splitter.addWidget(self.devices)
        self.splitter.addWidget(right)
        self.splitter.setStretchFactor(1, 1)
        self.splitter.setCollapsible(1, False)  # the device list collapses (Ctrl+B), pages not
        self.splitter.setSizes([window_state.SIDEBAR_WIDTH, 1000])
        self.setCentralWidget(self.splitter)
        self.status = StatusBar(self.runner, self)
        self.setStatusBar(self.status)
        self.fleet_page = FleetPage(self.ctx, self.status, self)
        self.tabs.addTab(self.fleet_page, "Fleet")
        self.fleet_live = FleetLive(self.live)

        self.watcher = DeviceWatcher(self.options.enumerate_fn, self.options.watch_interval_s,
                                     self)
        self._wire()
        build_menus(self)
        tooltips.apply(self, [self.model_page, self.flash_page, self.live, self.console,
                              self.records_page, self.fleet_page, self.devices])
        tooltips.tab_leaves_tables(self)
        window_state.install_sidebar_toggle(self)
        window_state.restore(self, PAGES)
        if self.options.kiosk:
            window_state.enter_kiosk(self, PAGES)

    # ------------------------------------------------------------------ wiring
    def _wire(self) -> None:
        self.watcher.added.connect(self.homing.device_added)
        self.watcher.added.connect(self.link.board_added)  # the lost board is back
        self.link.lookup = self.devices.entry
        self.live.before_replay = lambda: (self.fleet_live.close(), self.link.disconnect_port())
        self.fleet_page.device_chosen.connect(self._fleet_device)
        self.fleet_page.summary_shown.connect(self.fleet_live.show_drift)
        self.watcher.removed.connect(self.homing.device_removed)
        self.watcher.scanned.connect(self.homing.scanned)
        self.devices.connect_requested.connect(self.connect_port)
        self.devices.disconnect_requested.connect(self.disconnect)
        self.devices.demo_requested.connect(self.start_demo)
        self.link.state_changed.connect(self._link_state)
        self.link.connected.connect(self._link_connected)
        self.link.connected.connect(self._demo_flash)
        self.link.connected.connect(self.homing.leave_demo)
        self.link.error.connect(self.report_error)
        self.link.stranger.connect(self.homing.stranger)
        self.live.lines_received.connect(self.console.append_lines)
        self.live.status_changed.connect(self.status.set_rate)
        self.live.error.connect(self.report_error)
        self.live.info.connect(self.report_info)
        self.console.error.connect(self.report_error)
        self.console.info.connect(self.report_info)
        self.console.send_requested.connect(self._send_text)
        self.model_page.artifact_ready.connect(self._flash_artifact)
        self.devices.changed.connect(self.flash_page.devices_changed)

    # ------------------------------------------------------------------ start-up
    def start(self) -> None:
        """Begin watching devices and connect/demo as the options say (after show())."""
        if self.options.watch:
            self.watcher.start()
        QTimer.singleShot(0, self.live.build)  # pyqtgraph loads once the window is up
        last = self.settings.get("device/last_port")
        if self.options.port:
            self.connect_port(self.options.port)
        elif not self.options.demo and last and "://" not in last and os.path.exists(last):
            self.connect_port(last)  # a returning user's board: no need to wait for the scan
        elif self.options.demo:
            self.start_demo(banner="Demo mode: the built-in virtual board runs the example "
                            "vibration model.")
        if not self.options.watch:
            self.homing.scanned([])

    def connect_port(self, port: str) -> None:
        if self.link.busy and self.link.port != port:
            self._busy("switch to " + port, lambda: self.connect_port(port))
            return
        self.live.stop_replay()
        self.fleet_live.close()
        if self.link.port != port:  # another board: its own, empty view (no mixed traces)
            self.live.reset_view()
        self.link.auto_reconnect = self.options.kiosk
        self.link.connect_port(port)
        self.devices.select(port)
        window_state.set_kiosk_demo(self, self.demo.running and port == self.demo.port)

    def _fleet_device(self, url: str, fleet: str, device_id: str) -> None:
        if self.link.port is not None and not self.ask(
                f"Watch {device_id} live?",
                f"The Live page shows one source at a time: watching fleet device "
                f"{device_id} disconnects {self.link.board_label()} (at {self.link.port}). "
                "Reconnect it from the device list afterwards."):
            return
        if not self.link.disconnect_port():  # a job holds the port: try again after it
            self._busy("show " + device_id, lambda: self._fleet_device(url, fleet, device_id))
            return
        self.fleet_live.open(url, fleet, device_id)
        self.show_page("live")

    def ask(self, title: str, text: str) -> bool:
        """A yes/no question (a dialog; tests replace this method)."""
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def _connect_selected(self) -> None:
        sel = self.devices.selected()
        if sel is not None:
            self.connect_port(sel.port)

    def disconnect(self) -> None:
        if self.link.busy:
            self._busy("disconnect", self.disconnect)
            return
        self.link.disconnect_port()

    def _busy(self, what: str, later: Callable[[], None]) -> None:
        """A job holds the board: refuse ``what`` with a message (kiosk: do it afterwards)."""
        port = self.link.port or "the board"
        if self.options.kiosk:  # no one to ask: do it once the job is done
            self.link.when_idle(later)
            self.status.showMessage(f"{port} is busy ({self.link.busy_with()}): will "
                                    f"{what} when it finishes", 5000)
            return
        self.report_error(JobError(f"cannot {what}: {port} is busy ({self.link.busy_with()})",
                                   "wait for it to finish, or cancel it in the status bar, "
                                   "then try again"))

    def start_demo(self, banner: str | None = None) -> None:
        if self.demo.running:
            self.connect_port(self.demo.port)  # type: ignore[arg-type]
            return
        if self._demo_job is not None:
            return
        self.status.set_link("connecting", "starting the demo board…")
        job = self.runner.submit(self.demo.start, name="demo board")
        self._demo_job = job
        if isinstance(banner, str) and banner and not self.options.kiosk:  # kiosk: the title
            self.message.show_message("info", banner)

        def started(port: str) -> None:
            self._demo_job = None
            self.devices.add_device(DeviceEntry(port=port, name=board_name(self.demo.board_id),
                                                board_id=self.demo.board_id, mode="app",
                                                virtual=True, backend="virtual",
                                                serial=self.demo.serial))
            self._demo_pending_flash = self.options.demo_flash
            self.connect_port(port)
            self.show_page("live")
            self.demo_started.emit(port)

        def failed(err: JobError) -> None:
            self._demo_job = None
            self.status.set_link("failed", err.message)
            self.report_error(err)

        job.succeeded.connect(started)
        job.failed.connect(failed)

    def start_emulated(self) -> None:
        """Our firmware on an emulated Cortex-M4 (QEMU): built if needed, then connected."""
        from app.gui.emulated import BOARD_ID, NAME

        if self.emulated.running:
            self.connect_port(self.emulated.port)  # type: ignore[arg-type]
            return
        job = self.runner.submit(self.emulated.start, name=NAME)
        self.status.set_link("connecting", f"starting {NAME} (the first start builds it)…")

        def started(port: str) -> None:
            self.devices.add_device(DeviceEntry(port=port, name=NAME, board_id=BOARD_ID,
                                                mode="app", virtual=True, backend="smp"))
            self.connect_port(port)
            self.show_page("live")

        job.succeeded.connect(started)
        job.failed.connect(lambda err: (self.status.set_link("failed", err.message),
                                        self.report_error(err)))

    def _link_state(self, state: str, detail: str) -> None:
        self.status.set_link(state, detail)
        self.devices.set_status(self.link.port, state if state != "idle" else "")
        port = self.link.port or ""
        self.live.set_source(detail if state in ("connected", "lost") else "")
        entry = self.devices.entry(port) if port else None
        if state == "connected" and port and not (entry and entry.virtual):
            self.settings.set("device/last_port", port)

    def _link_connected(self, info: LinkInfo) -> None:
        self.devices.set_runtime(info.port, info.runtime)
        self.devices.select(info.port)  # the board followed to a new path stays selected
        self.status.clearMessage()  # a transient "lost …" is stale now
        if info.warning:
            self.message.show_message("warning", info.warning)
        elif self.message.level == "error":
            self.message.dismiss()
        if not info.runtime:
            self.live.set_empty_text(
                f"Connected to {info.port}.\nNo TinyOps runtime answered; waiting for text "
                "telemetry (JSON lines, Arduino plotter or Edge Impulse output).")
        self.flash_page.device_connected(info)

    def _flash_artifact(self, path: str) -> None:
        self.flash_page.set_artifact(path)
        self.show_page("flash")

    def _demo_flash(self, info: LinkInfo) -> None:
        """Demo: flash the bundled example through the Flash page once the board answers."""
        if not self._demo_pending_flash or info.port != self.demo.port:
            return
        self._demo_pending_flash = False
        entry = self.devices.entry(info.port)
        if entry is not None and info.runtime:
            self.flash_page.use_example()
            self.flash_page.flash_to(entry)

    def _send_text(self, text: str) -> None:
        session = self.link.session
        if session is None:
            self.report_error(JobError("no board is connected", "connect a board first"))
            return
        job = self.runner.submit(session.write_text, text + "\n", name="send",
                                 pass_context=False)
        job.failed.connect(self.report_error)
        self.link.lend(job)

    # ------------------------------------------------------------------ pages and views
    def show_page(self, key: str) -> None:
        if self.options.kiosk and key != "live":
            return
        self.tabs.setCurrentIndex(PAGES.index(key))

    def current_page(self) -> str:
        return PAGES[self.tabs.currentIndex()]

    def _toggle_pause(self) -> None:
        if self.current_page() == "live":
            self.live.toggle_pause()

    def _toggle_full_screen(self) -> None:
        if self.options.kiosk:
            return
        self.showNormal() if self.isFullScreen() else self.showFullScreen()

    def _open_model(self) -> None:
        if not self.options.kiosk:
            self.show_page("model")
            self.model_page.browse()

    def _replay(self) -> None:
        if self.options.kiosk:
            return
        if self.link.busy:
            self._busy("replay a recording", self._replay)
            return
        self.show_page("live")
        self.live._replay_clicked(before=self.live.before_replay)  # once a file is picked

    def follow_color_scheme(self) -> None:
        """Re-theme when the OS switches between light and dark."""
        from PySide6.QtWidgets import QApplication

        from app.gui import theme

        app = QApplication.instance()
        dark = theme.apply(app)
        if self.live.built:
            self.live.dashboard.set_dark(dark)

    # ------------------------------------------------------------------ messages
    def report_error(self, err: JobError) -> None:
        err = plain_error(err)  # no raw errno or Python reprs on screen
        self.message.show_error(err)
        self.status.showMessage(err.message, 8000)

    def report_info(self, text: str) -> None:
        self.message.info(text)
        self.status.showMessage(text, 5000)

    def shutdown(self) -> None:
        """Stop every thread this window started; idempotent."""
        if getattr(self, "_shut", False):
            return
        self._shut = True
        window_state.save(self)
        QTimer.singleShot(0, lambda: None)
        self.runner.cancel_all()  # first: a job holding the port stops between blocks
        self.model_page.shutdown()  # the model worker process (TensorFlow) ends now
        self.fleet_page.shutdown()
        self.fleet_live.close()
        self.watcher.stop()
        self.live.shutdown()
        self.runner.shutdown(5000)
        self.link.shutdown()
        self.demo.stop()
        self.emulated.stop()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)
