"""Which board the window shows as boards come and go: the first scan, hot-plug, the
kiosk's fallback to the demo board and its way back home (a mixin of ``MainWindow``).

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
    """Mixed into ``MainWindow`` (uses its ``link``, ``devices``, ``demo``, ``options``)."""

    options: Any
    link: Any
    devices: Any
    demo: Any
    settings: Any
    message: Any
    runner: Any
    _first_scan: bool

    def connect_port(self, port: str) -> None: ...  # MainWindow's

    def start_demo(self, banner: str | None = None) -> None: ...  # MainWindow's

    def _scanned(self, entries: list[DeviceEntry]) -> None:
        if self._first_scan:
            return
        self._first_scan = True
        if self.options.port or self.options.demo or self.link.port:
            return
        hardware = [e for e in entries if not e.virtual]
        last = self.settings.get("device/last_port")
        if self.options.kiosk:
            if entries:
                self.connect_port((hardware or entries)[0].port)
            else:
                self.start_demo(banner="No board connected: showing the demo board.")
        elif last and any(e.port == last for e in hardware):
            if self.link.port != last:
                self.connect_port(last)
        elif not hardware and self.options.auto_demo:
            if entries:  # a virtual board someone started: use it
                self.connect_port(entries[0].port)
                return
            self.start_demo(banner="No board connected: showing the demo board. Plug a board "
                            "in and pick it on the left.")

    def _device_added(self, entry: DeviceEntry) -> None:
        self.devices.add_device(entry)
        if self.link.port == entry.port:
            self.devices.set_status(entry.port, self.link.state)
        if self.options.kiosk:
            on_demo = self.demo.running and self.link.port == self.demo.port
            if self.link.state != "connected" and (self.link.port != entry.port
                                                   or entry.port in self.link.strangers):
                self.connect_port(entry.port)  # kiosk: whatever comes back, show it
            elif on_demo and entry.port != self.demo.port:
                self.connect_port(entry.port)  # kiosk: any board that comes, real or
                # virtual, replaces the demo (the demo is only for when there is none)

    def _device_removed(self, port: str) -> None:
        self.devices.remove_device(port)
        if self.options.kiosk and port == self.link.port:
            others = [e for e in self.devices.devices() if e.port != port]
            if others:
                hardware = [e for e in others if not e.virtual]
                boards = [e for e in others if e.port != self.demo.port]
                self.connect_port((hardware or boards or others)[0].port)
            else:  # keep retrying this port (a replug); fall back to the demo after a while
                QTimer.singleShot(KIOSK_DEMO_AFTER_MS, self._kiosk_fallback)

    def _stranger(self, port: str, msg: str) -> None:
        entry = self.devices.entry(port)
        found = self.link.strangers.get(port)
        listed = entry is not None and found is not None and (
            not entry.serial or entry.serial in (found.serial, found.hw_id))
        if self.options.kiosk and listed:  # nobody to ask: show the listed board there now
            self.connect_port(port)
        else:
            self.message.show_message("warning", msg)

    def _kiosk_fallback(self) -> None:
        if self.link.state != "connected" and not self.devices.devices():
            self.start_demo(banner="No board connected: showing the demo board.")

    def _leave_demo(self, info: Any) -> None:
        """Kiosk: home again on a real board: the demo board stops (and leaves the list).
        Any board other than the demo board: the "showing the demo board" banner goes."""
        if (self.demo.port is not None and info.port != self.demo.port
                and "showing the demo board" in self.message.message):
            self.message.dismiss()
        if self.options.kiosk and self.demo.running and info.port != self.demo.port:
            port = self.demo.port
            self.runner.submit(self.demo.stop, name="stop the demo board", pass_context=False)
            self.devices.remove_device(port)
