"""The Fleet page's rollout panel (issue 20): the rollouts in the records database, their
steps, devices per state, the last gate's figures, why one halted, its recent events; and
start, pause, resume, abort, roll back.

The panel never holds the work and never waits on the database on the GUI thread:

- a :class:`RolloutReader` thread reads the store (``RolloutStore``) every second and hands
  a :class:`~app.state.rollout_view.Snapshot` over through a signal;
- every action runs the CLI in a child process (``tinyops rollout create …``,
  ``tinyops rollout resume|pause|abort|rollback ID``), detached from the GUI: the
  orchestrator keeps going if the window closes, and another client (the CLI, another GUI)
  sees the same state. A child that fails is reported with the last line it wrote.

Every action is confirmed first (``ask``: the window's ``ask`` when there is one; tests
replace it), with a question naming how many devices it touches (``rollout_view``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QListWidget,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from app.gui.pages.rollout_start import StartDialog, child_outcome, cli
from app.gui.widgets import row_table
from app.state import rollout_view as rv

REFRESH_S = 1.0


def open_store() -> Any:
    from fleet_ops.rollout.store import RolloutStore

    return RolloutStore.open()


class RolloutReader(QObject):
    """Reads the store off the GUI thread, every :data:`REFRESH_S` and when asked."""

    snapshot = Signal(object)  # rollout_view.Snapshot

    def __init__(self, opener: Any = open_store) -> None:
        super().__init__()
        self.opener = opener
        self.selected: str | None = None
        self.thread_ident: int | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rollout-reader", daemon=True)

    def start(self) -> None:
        if not self._thread.is_alive() and not self._stop.is_set():
            self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def refresh(self) -> None:
        self._wake.set()

    def _run(self) -> None:
        self.thread_ident = threading.get_ident()
        store = None
        while not self._stop.is_set():
            try:
                if store is None:
                    store = self.opener()
                snap = rv.load_snapshot(store, self.selected)
            except Exception as exc:  # the database away: say so, try again next time
                message = getattr(exc, "message", None) or f"{type(exc).__name__}: {exc}"
                snap = rv.Snapshot(error=f"cannot read the rollouts: {message}")
                close = getattr(store, "close", None)
                store = None
                if callable(close):
                    with contextlib.suppress(Exception):  # failing already; reopened later
                        close()
            if not self._stop.is_set():
                self.snapshot.emit(snap)
            self._wake.wait(REFRESH_S)
            self._wake.clear()
        close = getattr(store, "close", None)
        if callable(close):
            close()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)


class RolloutPanel(QWidget):
    """The rollouts of the records database (see the module's docstring)."""

    shown = Signal(object)  # each snapshot shown (tests wait on it)

    def __init__(self, page: Any, parent: QWidget | None = None, opener: Any = open_store,
                 autostart: bool = True) -> None:
        super().__init__(parent)
        self.page = page  # the Fleet page: fleet name and broker for a new rollout
        self.snap = rv.Snapshot()
        self.children: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        self.new_button = QPushButton("New rollout…", self)
        self.new_button.setToolTip("Start a staged rollout of a model to this fleet "
                                   "(steps, health window, halt rules)")
        self.new_button.clicked.connect(self.start_new)
        self.buttons: dict[str, QPushButton] = {}
        top = QHBoxLayout()
        top.addWidget(self.new_button)
        for action in rv.ACTIONS:
            b = self.buttons[action] = QPushButton(rv.ACTION_LABELS[action] + "…", self)
            b.setToolTip(rv.ACTION_TIPS[action])
            b.clicked.connect(lambda _c=False, a=action: self.act(a))
            b.setEnabled(False)
            top.addWidget(b)
        self.note = QLabel("", self)
        top.addWidget(self.note, 1)
        self.table = row_table(rv.COLUMNS, self)
        self.table.itemSelectionChanged.connect(self._selected)
        self.title = QLabel("no rollout", self)
        self.title.setWordWrap(True)
        self.halt = QLabel("", self)
        self.halt.setWordWrap(True)
        self.halt.setStyleSheet("color: #c62828")
        self.counts = QLabel("", self)
        self.counts.setWordWrap(True)
        self.gate = QLabel("", self)
        self.gate.setWordWrap(True)
        self.figures = QTableWidget(0, 3, self)
        self.figures.setHorizontalHeaderLabels(("Figure", "Took the model", "Not yet"))
        self.figures.verticalHeader().setVisible(False)
        self.figures.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.figures.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.events = QListWidget(self)
        detail = QWidget(self)
        dl = QVBoxLayout(detail)
        dl.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.halt, self.counts, self.gate):
            dl.addWidget(w)
        inner = QSplitter(Qt.Orientation.Vertical, detail)
        inner.addWidget(self.figures)
        inner.addWidget(self.events)
        dl.addWidget(inner, 1)
        split = QSplitter(Qt.Orientation.Horizontal, self)
        split.addWidget(self.table)
        split.addWidget(detail)
        split.setStretchFactor(0, 1)
        split.setStretchFactor(1, 1)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        lay.addLayout(top)
        lay.addWidget(split, 1)
        self.reader = RolloutReader(opener)
        self.reader.snapshot.connect(self.show_snapshot)
        self.watch = QTimer(self)  # the children we started: report a failed one
        self.watch.timeout.connect(self.poll_children)
        self.watch.start(500)
        if autostart:
            self.reader.start()

    def showEvent(self, event: Any) -> None:
        self.reader.start()
        super().showEvent(event)

    # ---- view --------------------------------------------------------------------------
    def selected(self) -> Any | None:
        return self.snap.rollout(self.snap.selected)

    def show_snapshot(self, snap: rv.Snapshot) -> None:
        if snap.error:  # keep the last view; say why it is not fresh
            self.note.setText(snap.error)
            self.shown.emit(snap)
            return
        self.snap = snap
        rows = rv.rows(snap)
        self.table.blockSignals(True)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, text in enumerate(row.cells()):
                item = self.table.item(r, c)
                if item is None:
                    self.table.setItem(r, c, item := QTableWidgetItem())
                item.setText(text)
            if row.id == snap.selected:
                self.table.selectRow(r)
        self.table.blockSignals(False)
        self._show_detail()
        if self.note.text().startswith("cannot read"):
            self.note.setText("")
        self.shown.emit(snap)

    def _show_detail(self) -> None:
        r = self.selected()
        for action, b in self.buttons.items():
            b.setEnabled(action in rv.allowed(r))
        if r is None:
            self.title.setText("no rollout yet: New rollout… starts one")
            for w in (self.halt, self.counts, self.gate):
                w.setText("")
            self.figures.setRowCount(0)
            self.events.clear()
            return
        asked = rv.value(r.requested) if getattr(r, "requested", None) else ""
        self.title.setText(f"<b>{r.model_name}</b> → fleet {r.fleet}: "
                           f"{rv.value(r.state).replace('_', ' ')}, step {rv.step_text(r)}"
                           + (f" ({asked} asked)" if asked else "")
                           + (f"<br>{runner}" if (runner := rv.runner_text(r, self.snap.holder))
                              else ""))
        self.halt.setText(rv.halt_reason(r))
        items = rv.count_items(self.snap.counts.get(r.id))
        self.counts.setText("Devices: " + (", ".join(f"{n} {s}" for s, n in items) or "none"))
        head, figs = rv.gate_figures(self.snap.events)
        self.gate.setText(f"Gate: {head}")
        self.figures.setRowCount(len(figs))
        for i, f in enumerate(figs):
            for c, text in enumerate((f.name, f.took, f.rest)):
                item = QTableWidgetItem(text)
                if f.breached:
                    item.setForeground(Qt.GlobalColor.red)
                self.figures.setItem(i, c, item)
        self.events.clear()
        for e in rv.notable(self.snap.events):
            self.events.addItem(line := rv.event_line(e))
            self.events.item(self.events.count() - 1).setToolTip(line)

    def _selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        rid = self.snap.rollouts[rows[0].row()].id if rows[0].row() < len(
            self.snap.rollouts) else None
        if rid and rid != self.snap.selected:
            self.snap.selected = rid
            self.snap.events = []
            self.reader.selected = rid
            self._show_detail()
            self.reader.refresh()

    # ---- actions -----------------------------------------------------------------------
    def ask(self, title: str, text: str) -> bool:
        """The window's yes/no question (tests replace ``win.ask`` or this method)."""
        win = self.window()
        if win is not self and callable(getattr(win, "ask", None)):
            return bool(win.ask(title, text))
        from PySide6.QtWidgets import QMessageBox

        answer = QMessageBox.question(self, title, text)
        return answer == QMessageBox.StandardButton.Yes

    def act(self, action: str) -> bool:
        """Confirm ``action`` on the selected rollout, then run it in a child process."""
        r = self.selected()
        if r is None or action not in rv.allowed(r):
            return False
        title, text = rv.confirmation(action, r, self.snap.counts.get(r.id))
        if not self.ask(title, text):
            return False
        args = [action, r.id]
        if action in ("resume", "rollback"):  # they may run the orchestrator here
            args += self._broker_args(r)
        self.spawn(action, args)
        return True

    def _broker_args(self, r: Any) -> list[str]:
        """The page's broker URL when it is the rollout's (the stored one is redacted: no
        password); else the rollout's own."""
        from fleet_ops.fleet.mqtt import redact

        url = self.page.broker_url()
        try:
            same = redact(url) == r.mqtt_url
        except Exception:  # a malformed URL on the page is not the rollout's
            same = False
        return ["--mqtt", url] if same else []

    def start_new(self) -> None:
        dialog = StartDialog(self.page.fleet_name(), self.page.broker_url(), self)
        try:
            if dialog.exec() != QDialog.DialogCode.Accepted:
                return
            self.start_from(dialog)
        finally:
            dialog.deleteLater()

    def start_from(self, dialog: StartDialog) -> bool:
        """Confirm and start the rollout the dialog describes (its ``command()``)."""
        try:
            args = dialog.command()
        except ValueError as exc:
            self.note.setText(str(exc))
            return False
        devices = [d for d in dialog.devices.text().replace(" ", "").split(",") if d]
        known = len(devices) or len(getattr(self.page, "rows", {}) or {}) or None
        text = rv.create_confirmation(Path(args[1]).name, dialog.fleet, known,
                                      rv.parse_steps(dialog.steps.text()))
        if not self.ask("Start rollout", text):
            return False
        self.spawn("create", args)
        return True

    def spawn(self, what: str, args: list[str]) -> subprocess.Popen[bytes]:
        """``tinyops rollout ARGS`` in a child process of its own session (it outlives us)."""
        log = Path(tempfile.mkstemp(prefix=f"tinyops-rollout-{what}-", suffix=".log")[1])
        with open(log, "wb") as out:
            child = subprocess.Popen(cli(*args, "--json"), stdin=subprocess.DEVNULL, stdout=out,
                                     stderr=subprocess.STDOUT, start_new_session=True,
                                     env=dict(os.environ))
        self.children.append((what, child, log))
        self.note.setText(f"{what}: started (process {child.pid})")
        self.reader.refresh()
        return child

    def poll_children(self) -> None:
        left = []
        for what, child, log in self.children:
            rc = child.poll()
            if rc is None:
                left.append((what, child, log))
                continue
            said = child_outcome(log.read_text(errors="replace"), rc)
            if said.get("error"):
                self.note.setText(f"{what} failed: {said['error'][:200]}")
                report = getattr(getattr(self.page, "ctx", None), "report_error", None)
                if callable(report):
                    from app.gui.workers import JobError

                    report(JobError(f"rollout {what} failed: {said['error']}",
                                    said.get("hint") or f"the whole output is in {log}"))
            else:
                state = said.get("state")
                self.note.setText(f"{what}: done" + (f" (rollout {state})" if state else ""))
            self.reader.refresh()
        self.children = left

    def shutdown(self) -> None:
        """Stop reading; the rollout children keep working (they are the orchestrators)."""
        self.watch.stop()
        self.reader.stop()
