"""Which board the window shows as boards come and go: the first scan, hot-plug, the
kiosk's fallback to the demo board and its way back home (``MainWindow.homing``: the
window's board events are connected to it; it acts through the window it is given).

Kiosk: with no board, the demo board after ``KIOSK_DEMO_AFTER_MS``; any board that
appears then (real or virtual, on any path) replaces the demo at once, and the demo board
is stopped (it costs CPU and is listed as a board). Desk: another board answering where
the user's board was is reported, never connected to (``DeviceLink.stranger``).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QTimer

from app.gui.devices import DeviceEntry

KIOSK_DEMO_AFTER_MS = 8000


class BoardEvents:
    """The window's board events; ``win`` is the ``MainWindow`` (its ``link``, ``devices``,
    ``demo``, ``options``, ``settings``, ``message``, ``runner``, ``connect_port`` and
    ``start_demo``)."""

    def __init__(self, win: Any) -> None:
        self.win = win
        self._first_scan = False

    def scanned(self, entries: list[DeviceEntry]) -> None:
        if self._first_scan:
            return
        self._first_scan = True
        if self.win.options.port or self.win.options.demo or self.win.link.port:
            return
        hardware = [e for e in entries if not e.virtual]
        last = self.win.settings.get("device/last_port")
        if self.win.options.kiosk:
            if entries:
                self.win.connect_port((hardware or entries)[0].port)
            else:
                self.win.start_demo(banner="No board connected: showing the demo board.")
        elif last and any(e.port == last for e in hardware):
            if self.win.link.port != last:
                self.win.connect_port(last)
        elif not hardware and self.win.options.auto_demo:
            if entries:  # a virtual board someone started: use it
                self.win.connect_port(entries[0].port)
                return
            self.win.start_demo(banner="No board connected: showing the demo board. Plug a board "
                            "in and pick it on the left.")

    def device_added(self, entry: DeviceEntry) -> None:
        self.win.devices.add_device(entry)
        if self.win.link.port == entry.port:
            self.win.devices.set_status(entry.port, self.win.link.state)
        if self.win.options.kiosk:
            on_demo = self.win.demo.running and self.win.link.port == self.win.demo.port
            if self.win.link.state != "connected" and (self.win.link.port != entry.port
                                                   or entry.port in self.win.link.strangers):
                self.win.connect_port(entry.port)  # kiosk: whatever comes back, show it
            elif on_demo and entry.port != self.win.demo.port:
                self.win.connect_port(entry.port)  # kiosk: any board that comes, real or
                # virtual, replaces the demo (the demo is only for when there is none)

    def device_removed(self, port: str) -> None:
        self.win.devices.remove_device(port)
        if self.win.options.kiosk and port == self.win.link.port:
            others = [e for e in self.win.devices.devices() if e.port != port]
            if others:
                hardware = [e for e in others if not e.virtual]
                boards = [e for e in others if e.port != self.win.demo.port]
                self.win.connect_port((hardware or boards or others)[0].port)
            else:  # keep retrying this port (a replug); fall back to the demo after a while
                # the window is the timer's context: closed meanwhile, the timer goes with it
                QTimer.singleShot(KIOSK_DEMO_AFTER_MS, self.win, self._kiosk_fallback)

    def stranger(self, port: str, msg: str) -> None:
        entry = self.win.devices.entry(port)
        found = self.win.link.strangers.get(port)
        listed = entry is not None and found is not None and (
            not entry.serial or entry.serial in (found.serial, found.hw_id))
        if self.win.options.kiosk and listed:  # nobody to ask: show the listed board there now
            self.win.connect_port(port)
        else:
            self.win.message.show_message("warning", msg)

    def _kiosk_fallback(self) -> None:
        if self.win.link.state != "connected" and not self.win.devices.devices():
            self.win.start_demo(banner="No board connected: showing the demo board.")

    def leave_demo(self, info: Any) -> None:
        """Kiosk: home again on a real board: the demo board stops (and leaves the list).
        Any board other than the demo board: the "showing the demo board" banner goes."""
        if (self.win.demo.port is not None and info.port != self.win.demo.port
                and "showing the demo board" in self.win.message.message):
            self.win.message.dismiss()
        if self.win.options.kiosk and self.win.demo.running and info.port != self.win.demo.port:
            port = self.win.demo.port
            self.win.runner.submit(self.win.demo.stop, name="stop the demo board",
                                   pass_context=False)
            self.win.devices.remove_device(port)
