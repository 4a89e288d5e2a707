"""Who owns a board's port while it is flashed (no Qt).

A board the window is connected to has one owner of its port, the link's session. For a
flash to that board there are three ways, decided once here, before the job starts:

- ``share``: the back end uploads through the link's open session (SMP over the runtime's
  console), so the live view keeps running during the upload;
- ``release``: the back end opens the port itself (a bootloader, a drive, another
  protocol): the link closes its session first, the job waits until the port is free,
  flashes, and the link reconnects when the job ends, to the same board (its identity is
  kept, without the model, which the flash changes on purpose);
- ``refuse``: a job already holds the port (a validation, another flash): releasing it
  would kill that job, so this flash is refused with a reason and what to do.

A board the link is not connected to (``none``) is opened by the back end alone.
:class:`FlashHandover` carries a decision through a flash job's life; the Qt page only
wires it to the job's signals.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from app.state.link import LinkState

if TYPE_CHECKING:
    from device_drivers.link.session import DeviceSession

# states in which the link counts as the port's owner (it holds it or will reopen it)
OWNING = (LinkState.CONNECTED, LinkState.CONNECTING, LinkState.LOST)


class Mode(str, enum.Enum):
    NONE = "none"
    SHARE = "share"
    RELEASE = "release"
    REFUSE = "refuse"


class Link(Protocol):
    """What the handover needs of the link (``app.gui.connection.DeviceLink``)."""

    port: str | None

    @property
    def state(self) -> LinkState: ...
    @property
    def session(self) -> DeviceSession | None: ...
    @property
    def busy(self) -> bool: ...
    def busy_with(self) -> str: ...
    def release(self) -> Callable[[float], bool]: ...
    def resume(self) -> None: ...
    def lend(self, job: Any) -> None: ...


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: str = ""
    hint: str | None = None


def decide(*, port: str, link_port: str | None, link_state: LinkState, session_open: bool,
           busy: bool, busy_with: str, shares: Callable[[], bool]) -> Decision:
    """The handover for a flash to ``port``. ``shares()`` (is the artifact one the link's
    session can carry?) is asked only when the answer matters (it may read the file)."""
    if link_port != port or link_state not in OWNING:
        return Decision(Mode.NONE, f"{port} is not the connected board: the back end opens it")
    if session_open and shares():
        return Decision(Mode.SHARE, f"the upload goes through the open session on {port}")
    if busy:
        return Decision(Mode.REFUSE, f"{port} is busy ({busy_with})",
                        "wait for it to finish (or cancel it), then flash again")
    return Decision(Mode.RELEASE, f"the live view lets go of {port} for the back end")


class FlashHandover:
    """One flash's handover: :meth:`plan`, then :meth:`started` with the job, and
    :meth:`finished` when it ends (the link reconnects if it let go of the port)."""

    def __init__(self, link: Link, port: str, shares: Callable[[], bool]) -> None:
        self.link = link
        self.port = port
        self.decision = decide(port=port, link_port=link.port, link_state=link.state,
                               session_open=link.session is not None, busy=link.busy,
                               busy_with=link.busy_with() if link.busy else "",
                               shares=shares)
        self.session: DeviceSession | None = None  # SHARE: the session the job uploads through
        self.wait_port: Callable[[float], bool] | None = None  # RELEASE: the job waits on it
        self._resumed = False
        if self.decision.mode is Mode.SHARE:
            self.session = link.session
        elif self.decision.mode is Mode.RELEASE:
            self.wait_port = link.release()

    @property
    def mode(self) -> Mode:
        return self.decision.mode

    @property
    def refused(self) -> bool:
        return self.decision.mode is Mode.REFUSE

    def started(self, job: Any) -> None:
        """The flash job runs: the link refuses a disconnect or a switch under it."""
        if self.link.port == self.port and not self.refused:
            self.link.lend(job)

    def finished(self, *_: Any) -> None:
        """The job ended (any outcome): a released port goes back to the link, once."""
        if self.decision.mode is Mode.RELEASE and not self._resumed:
            self._resumed = True
            self.link.resume()
