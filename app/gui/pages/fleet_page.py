"""The Fleet page: devices publishing over MQTT (issue 12), the records server, and the
"N records waiting for the server" note in the status bar.

The core fleet aggregator (``fleet_ops.fleet.monitor.FleetMonitor``) runs off the GUI
thread: a :class:`FleetWorker` thread connects it (which may block for seconds) and every
half second takes its summary; paho's own network thread does the counting. The GUI thread
only fills the table and the selected device's plot from what the worker hands over.

Choosing a device emits :attr:`FleetPage.device_chosen` (broker URL, fleet, device id): the
window then opens the Live dashboard fed from that device's MQTT telemetry through the same
path as a serial board (``app/gui/live/mqtt_source.py``). The small per-device plot on this
page (top score and latency of each message, or the class counts of summary messages) stays,
fed from the messages the aggregator counted (``FleetMonitor.on_counted``).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QStatusBar,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from app.gui.pages.fleet_plot import DevicePlot
from app.gui.pages.fleet_rollouts import RolloutPanel
from app.gui.pages.fleet_worker import FleetWorker
from app.gui.widgets import row_table
from app.gui.workers import JobError

COLUMNS = ("Device", "Status", "Model", "Last seen", "Messages", "Drift", "Alerts")
DEFAULT_BROKER = "mqtt://127.0.0.1:1883"
PENDING_EVERY_MS = 5000


class FleetPage(QWidget):
    device_chosen = Signal(str, str, str)  # broker URL, fleet, device id
    summary_shown = Signal(object)  # each fleet summary the table showed (drift for Live)

    def __init__(self, ctx: Any, status_bar: QStatusBar | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.ctx = ctx
        self.worker: FleetWorker | None = None
        self.rows: dict[str, dict[str, Any]] = {}
        self.broker = QLineEdit(DEFAULT_BROKER, self)
        self.broker.setToolTip("MQTT broker, mqtt://host:port (Enter connects)")
        self.fleet = QLineEdit("default", self)
        self.fleet.setToolTip("Fleet name: the topic level after tinyops/ (Enter connects)")
        self.fleet.setMaximumWidth(140)
        for field in (self.broker, self.fleet):
            field.returnPressed.connect(self._enter)
        self.connect_button = QPushButton("Connect", self)
        self.connect_button.setToolTip("Subscribe to the fleet's status and telemetry")
        self.connect_button.clicked.connect(self.toggle)
        self.cards: list[str] = []  # model cards (drift baselines) besides the example's
        self.cards_button = QPushButton("Model cards…", self)
        self.cards_button.setToolTip("Load model cards (*.card.json, written by Quantize): "
                                     "their drift baselines, matched by model sha256")
        self.cards_button.clicked.connect(self._pick_cards)
        self.watch_button = QPushButton("Watch live", self)
        self.watch_button.setToolTip("Show the chosen device on the Live page (Enter or a "
                                     "double-click in the table does the same)")
        self.watch_button.clicked.connect(self.watch)
        self.state = QLabel("not connected", self)
        self.state.setMinimumWidth(120)  # long news is cut here, never widens the window
        self.state.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        top = QHBoxLayout()
        for w, stretch in ((QLabel("Broker", self), 0), (self.broker, 1),
                           (QLabel("Fleet", self), 0), (self.fleet, 0),
                           (self.connect_button, 0), (self.cards_button, 0),
                           (self.watch_button, 0), (self.state, 1)):
            top.addWidget(w, stretch)
        self.table = row_table(COLUMNS, self)
        self.table.itemSelectionChanged.connect(self._selected)
        self.table.activated.connect(lambda _i: self.watch())  # Enter, double-click
        self.table.setTabKeyNavigation(False)  # Tab leaves the table
        self.device_plot = DevicePlot(self)
        split = QSplitter(Qt.Orientation.Vertical, self)
        split.addWidget(self.table)
        split.addWidget(self.device_plot)
        self.rollouts = RolloutPanel(self, self, autostart=False)  # reads when first shown
        self.views = QTabWidget(self)
        self.views.addTab(split, "Devices")
        self.views.addTab(self.rollouts, "Rollouts")
        self.records_url = QLineEdit(self)
        self.records_url.setPlaceholderText("blank: this computer's records file; or "
                                            "postgresql://user:password@host/db")
        save = QPushButton("Use", self)
        save.clicked.connect(self.save_records_url)
        rec = QHBoxLayout()
        rec.addWidget(QLabel("Records server", self))
        rec.addWidget(self.records_url, 1)
        rec.addWidget(save)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addWidget(self.views, 1)
        lay.addLayout(rec)
        self.pending = PendingNote(status_bar, self)
        self._load_records_url()

    # ---- broker ------------------------------------------------------------------------
    def toggle(self) -> None:
        if self.worker is not None:
            self.stop()
            return
        worker = self.worker = FleetWorker(self.broker.text().strip(),
                                           self.fleet.text().strip() or "default", self.cards)
        worker.summary.connect(self.show_summary)
        worker.samples.connect(self._samples)
        worker.failed.connect(self._failed)
        worker.started.connect(self._started)
        worker.device = self.device_plot.device
        self.connect_button.setText("Disconnect")
        self.state.setText("connecting…")
        worker.start()

    def stop(self) -> None:
        worker, self.worker = self.worker, None
        if worker is not None:
            worker.stop()
            worker.summary.disconnect()
            worker.samples.disconnect()
        self.connect_button.setText("Connect")
        self.state.setText("not connected")
        self.state.setStyleSheet("")

    def _started(self, url: str) -> None:
        self.state.setText(f"connected to {url}")

    def _show_broker(self, broker: dict[str, Any]) -> None:
        """The broker's state, from each summary (while it is away, devices are unknown)."""
        if not broker or self.worker is None:
            return
        if broker.get("connected"):
            n = broker.get("reconnects") or 0
            text = f"connected to {broker.get('url')}" + (f" · {n} reconnection(s)" if n else "")
            tip = ""
        else:
            since = (broker.get("unreachable_since") or "?").replace("T", " ")[:19]
            text = f"broker unreachable since {since[11:] or since} · retrying"
            tip = (f"{broker.get('url')} unreachable since {since} "
                   f"({broker.get('reason') or 'no answer'}); the devices are shown as unknown "
                   "until it is back")
        self.state.setToolTip(tip)
        self.state.setStyleSheet("" if broker.get("connected") else
                                 "color: #b00020; font-weight: bold;")
        self.state.setText(text)

    def _failed(self, message: str) -> None:
        self.stop()
        self.state.setText(message)
        report = getattr(self.ctx, "report_error", None)
        if callable(report):
            report(JobError(message, "check the broker address and that it runs"))

    def _enter(self) -> None:
        if self.worker is None:
            self.toggle()

    def _pick_cards(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Model cards", "",
                                                "Model cards (*.card.json);;All files (*)")
        if files:
            self.set_cards(files)

    def set_cards(self, files: list[str]) -> None:
        """Use these cards' drift baselines (the example's always); reconnects if needed."""
        self.cards = [str(Path(f)) for f in files]
        self.cards_button.setText(f"Model cards ({len(self.cards)})…")
        if self.worker is not None:
            self.stop()
            self.toggle()

    def show_summary(self, summary: dict[str, Any]) -> None:
        self._show_broker(summary.get("broker") or {})
        devices = summary.get("devices", [])
        self.rows = {d["device_id"]: d for d in devices}
        chosen = self.device_plot.device
        self.table.blockSignals(True)
        self.table.setRowCount(len(devices))
        for r, d in enumerate(devices):
            score = d.get("drift_score")
            drift = "—" if score is None else f"{score:.3f}"
            alerts = "; ".join(f"{a['kind']} {a.get('score', 0):.2f}" for a in d["alerts"])
            seen = (d.get("last_seen") or "—").replace("T", " ")[:23]
            values = (d["device_id"], d.get("state") or "?", (d.get("model_sha256") or "—")[:12],
                      seen, str(d["messages"]), drift, alerts or "—")
            for c, text in enumerate(values):
                item = self.table.item(r, c)
                if item is None:
                    self.table.setItem(r, c, item := QTableWidgetItem())
                item.setText(text)
                item.setForeground(Qt.GlobalColor.red if c in (5, 6) and alerts else
                                   self.palette().text().color())
            if d["device_id"] == chosen:
                self.table.selectRow(r)
        self.table.blockSignals(False)
        self.summary_shown.emit(summary)

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        item = self.table.item(rows[0].row(), 0) if rows else None
        device = item.text() if item is not None else None
        if device != self.device_plot.device:
            self._show_device(device)

    def _show_device(self, device: str | None) -> None:
        """A row chosen: this page's small plot follows it (the page stays)."""
        self.device_plot.clear(device)
        if self.worker is not None:
            self.worker.device = device

    def watch(self) -> None:
        """The chosen device on the Live page (Enter, double-click, "Watch live")."""
        device, w = self.device_plot.device, self.worker  # the table's connection
        if device and w is not None:
            self.device_chosen.emit(w.url, w.fleet, device)

    def choose(self, device_id: str, watch: bool = True) -> None:
        """Choose ``device_id`` (as clicking its row does) and, with ``watch``, show it
        on the Live page (as Enter does)."""
        for r in range(self.table.rowCount()):
            item = self.table.item(r, 0)
            if item is not None and item.text() == device_id:
                self.table.selectRow(r)
                break
        else:
            self._show_device(device_id)
        if watch:
            self.watch()

    def _samples(self, device: str, batch: list[tuple[float, dict[str, Any]]]) -> None:
        if device == self.device_plot.device:
            self.device_plot.add(batch)

    def fleet_name(self) -> str:
        return self.fleet.text().strip() or "default"

    def broker_url(self) -> str:
        return self.broker.text().strip() or DEFAULT_BROKER

    # ---- records server ----------------------------------------------------------------
    def _load_records_url(self) -> None:
        from fleet_ops.records import records_url
        from tinyops_base.errors import TinyOpsError

        try:
            self.records_url.setText(records_url())
        except TinyOpsError as exc:
            self.records_url.setText("")
            self.state.setText(exc.message)

    def save_records_url(self) -> bool:
        from fleet_ops.records import set_records_url
        from tinyops_base.errors import TinyOpsError

        try:
            clean = set_records_url(self.records_url.text())
        except TinyOpsError as exc:
            report = getattr(self.ctx, "report_error", None)
            if callable(report):
                report(exc.message)
            return False
        self.records_url.setText(clean)
        self.pending.refresh()
        return True

    def shutdown(self) -> None:
        self.stop()
        self.rollouts.shutdown()
        self.pending.shutdown()


class PendingNote(QObject):
    """"N records waiting for the server" in the status bar, delivered (when the server is
    back) and counted off the GUI thread."""

    counted = Signal(int)

    def __init__(self, status_bar: QStatusBar | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.label = QLabel("")
        self.label.setVisible(False)
        if status_bar is not None:
            status_bar.addPermanentWidget(self.label)
        self.count: int | None = None
        self._busy = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.counted.connect(self._show)
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.refresh)
        self.timer.start(PENDING_EVERY_MS)
        self.refresh()

    def refresh(self) -> None:
        if not self._busy.acquire(blocking=False):
            return  # the previous count is still running
        thread = threading.Thread(target=self._count, name="records-pending", daemon=True)
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()

    def _count(self) -> None:
        from fleet_ops.records.delivery import deliver_waiting

        try:
            n = deliver_waiting()  # sends what waits while the app runs, then counts
        except Exception:  # an unreadable outbox is the records page's problem, not a crash
            n = -1
        finally:
            self._busy.release()
        self.counted.emit(n)

    def _show(self, n: int) -> None:
        self.count = n
        self.label.setVisible(n > 0)
        noun = "record" if n == 1 else "records"
        self.label.setText(f"{n} {noun} waiting for the server" if n > 0 else "")

    def shutdown(self) -> None:
        self.timer.stop()
        for t in self._threads:
            t.join(5)
