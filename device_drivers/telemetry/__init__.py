"""Telemetry parsing: text lines from a device's serial port turned into plottable channels.

Pure classes, no I/O and no threads: the port's reader calls ``TelemetryParser.feed(bytes, t)``
with whatever it read, and the GUI or CLI calls ``drain()`` on a timer to get a
``TelemetryBatch`` (numpy arrays per channel, console lines, top label, counters).
Formats: JSON lines (TinyOps runtime), Arduino Serial Plotter lines, Edge Impulse firmware
output; auto-detected per port unless forced. ``HostClock`` maps a device's own clock
(the runtime's ``"t"``) to host time: the one clock policy of every consumer.
"""

from device_drivers.telemetry.batch import TelemetryBatch
from device_drivers.telemetry.clock import HostClock
from device_drivers.telemetry.parser import FORMATS, TelemetryParser
from device_drivers.telemetry.store import MAX_ABS_VALUE

__all__ = ["FORMATS", "MAX_ABS_VALUE", "HostClock", "TelemetryBatch", "TelemetryParser"]
