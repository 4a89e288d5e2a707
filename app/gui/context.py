"""What pages share: the job runner, the device link, settings, and a way to speak up."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from app.gui.connection import DeviceLink
from app.gui.settings import Settings
from app.gui.workers import JobError, JobRunner


@dataclass
class AppContext:
    runner: JobRunner
    link: DeviceLink
    settings: Settings
    report_error: Callable[[JobError], None]
    report_info: Callable[[str], None]
    devices: Callable[[], list[Any]]  # DeviceEntry list, current
    selected_device: Callable[[], Any]  # DeviceEntry | None
    kiosk: bool = False
    demo_port: Callable[[], str | None] = lambda: None  # the in-process demo board's port
