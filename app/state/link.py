"""The GUI's link to one board as a typed state machine (no Qt).

States (:class:`LinkState`) and the events that move between them (:class:`LinkEvent`) are
listed once, in :data:`TRANSITIONS`; an event the current state does not accept is refused
with :class:`IllegalTransition` and the state stays as it was. ``app.gui.connection.DeviceLink``
is the Qt side: it owns the reader thread and turns this model's callbacks into signals.

::

    idle ──connect──▶ connecting ──opened──▶ connected ──dropped──▶ lost
                       │  │  └─open_failed──▶ failed                 │
                       │  └─retry / stranger / dropped──▶ lost ──connect──▶ connecting
    connecting / connected / lost ──release──▶ released ──resume──▶ connecting
    every state but idle ──disconnect──▶ idle

Besides the state, the model keeps what the link's policy needs: which jobs hold the port
(:meth:`LinkModel.lend`, :meth:`LinkModel.when_idle`), why the board is away, which board
it is (:class:`~app.board_identity.BoardIdentity`) and whether a board that appears is the
one that went away (:meth:`LinkModel.follows`).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.board_identity import BoardIdentity
from tinyops_base.errors import TinyOpsError


class LinkState(str, enum.Enum):
    """Where the link is. A ``str`` enum: ``LinkState.CONNECTED == "connected"``."""

    IDLE = "idle"  # no port chosen
    CONNECTING = "connecting"  # a reader is opening the port
    CONNECTED = "connected"  # the session is open (streaming if the runtime can)
    LOST = "lost"  # the board went away (or could not be opened): retrying
    FAILED = "failed"  # the port could not be opened and nobody retries
    RELEASED = "released"  # a flash back end has the port

    def __str__(self) -> str:
        return self.value


class LinkEvent(enum.Enum):
    CONNECT = "connect"  # start a reader (a choice, a retry, the board came back)
    OPENED = "opened"  # the reader opened the session and knows the board
    OPEN_FAILED = "open_failed"  # could not open; no retry
    RETRY = "retry"  # could not open; retrying (auto-reconnect, or the board is away)
    DROPPED = "dropped"  # the session pushed a disconnect: the board went away
    STRANGER = "stranger"  # another board answered where ours was: not connected to
    RELEASE = "release"  # a flash back end takes the port
    RESUME = "resume"  # the flash ended: reconnect
    DISCONNECT = "disconnect"  # the user let go of the port


S, E = LinkState, LinkEvent
TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState] = {
    (S.IDLE, E.CONNECT): S.CONNECTING,
    (S.CONNECTING, E.CONNECT): S.CONNECTING,  # another port, or the board moved
    (S.CONNECTING, E.OPENED): S.CONNECTED,
    (S.CONNECTING, E.OPEN_FAILED): S.FAILED,
    (S.CONNECTING, E.RETRY): S.LOST,
    (S.CONNECTING, E.STRANGER): S.LOST,
    (S.CONNECTING, E.DROPPED): S.LOST,  # the board went away while it was being asked
    (S.CONNECTING, E.RELEASE): S.RELEASED,
    (S.CONNECTING, E.DISCONNECT): S.IDLE,
    (S.CONNECTED, E.DROPPED): S.LOST,
    (S.CONNECTED, E.CONNECT): S.CONNECTING,  # switch to another board
    (S.CONNECTED, E.RELEASE): S.RELEASED,
    (S.CONNECTED, E.DISCONNECT): S.IDLE,
    (S.LOST, E.CONNECT): S.CONNECTING,
    (S.LOST, E.RELEASE): S.RELEASED,
    (S.LOST, E.DISCONNECT): S.IDLE,
    (S.FAILED, E.CONNECT): S.CONNECTING,
    (S.FAILED, E.DISCONNECT): S.IDLE,
    (S.RELEASED, E.RESUME): S.CONNECTING,
    (S.RELEASED, E.CONNECT): S.CONNECTING,
    (S.RELEASED, E.DISCONNECT): S.IDLE,
}
del S, E


class IllegalTransition(TinyOpsError):
    """An event the link's current state does not accept (the state is unchanged)."""

    def __init__(self, state: LinkState, event: LinkEvent) -> None:
        allowed = sorted(e.value for (s, e) in TRANSITIONS if s is state)
        super().__init__(f"the link cannot take '{event.value}' while {state.value}",
                         f"in state {state.value} it accepts: {', '.join(allowed)}")
        self.state = state
        self.event = event


class LinkMachine:
    """The state and its transitions. ``on_change(state, detail)`` after every one."""

    def __init__(self, on_change: Callable[[LinkState, str], Any] | None = None) -> None:
        self.state = LinkState.IDLE
        self.detail = ""
        self.on_change = on_change
        self.history: list[tuple[LinkState, LinkEvent, LinkState]] = []

    def can(self, event: LinkEvent) -> bool:
        return (self.state, event) in TRANSITIONS

    def fire(self, event: LinkEvent, detail: str = "") -> LinkState:
        """Take ``event``: the new state, or :class:`IllegalTransition` (nothing changes)."""
        target = TRANSITIONS.get((self.state, event))
        if target is None:
            raise IllegalTransition(self.state, event)
        self.history.append((self.state, event, target))
        del self.history[:-64]
        self.state, self.detail = target, detail
        if self.on_change is not None:
            self.on_change(target, detail)
        return target


RECONNECT_MS = 400  # retry period while a lost board is away (it is back within 2 s)


@dataclass(frozen=True)
class Next:
    """What the link does after a failure: the event, its detail, when to try again (ms,
    None: not by itself) and whether to tell the user (a kiosk has nobody to tell)."""

    event: LinkEvent
    detail: str
    retry_ms: int | None
    tell: bool


@dataclass
class LinkModel:
    """The link's state and policy, without the thread that owns the port."""

    machine: LinkMachine = field(default_factory=LinkMachine)
    port: str | None = None
    serial: str | None = None  # USB serial of the board on ``port``, if known
    outage: str | None = None  # why the board went away, while it is away
    identity: BoardIdentity | None = None  # the board this link is to, once known
    strangers: dict[str, BoardIdentity] = field(default_factory=dict)
    holders: list[Any] = field(default_factory=list)  # jobs using the session or the port
    pending: Callable[[], Any] | None = None  # run once no job holds the port

    @property
    def state(self) -> LinkState:
        return self.machine.state

    # -------------------------------------------------------------- jobs on the port
    @property
    def busy(self) -> bool:
        return bool(self.holders)

    def busy_with(self) -> str:
        return ", ".join(str(getattr(j, "name", "a job")) for j in self.holders)

    def lend(self, job: Any) -> None:
        self.holders.append(job)

    def returned(self, job: Any) -> Callable[[], Any] | None:
        """``job`` let go of the port: the deferred action to run now that none holds it."""
        if job in self.holders:
            self.holders.remove(job)
        if self.holders:
            return None
        pending, self.pending = self.pending, None
        return pending

    def when_idle(self, action: Callable[[], Any]) -> bool:
        """True: run ``action`` now; False: deferred until the last job ends (last one wins)."""
        if not self.busy:
            return True
        self.pending = action
        return False

    # -------------------------------------------------------------- which board
    def board_label(self) -> str:
        """The board for messages: its identity, never a bare path when it is known."""
        if self.identity is not None and self.identity.known:
            return self.identity.describe()
        return f"the board at {self.port}" if self.port else "the board"

    def follows(self, port: str | None, serial: str | None) -> bool:
        """A board appeared at ``port`` (with USB ``serial``): is it ours, back from away?

        With a serial on both sides the serial decides; without one only our old path is
        tried (the reader then checks the board's identity before using it)."""
        if self.outage is None or self.port is None or self.busy:
            return False
        want = (self.identity.serial if self.identity is not None else None) or self.serial
        if serial and want:
            return serial == want
        return port == self.port

    def open_failed(self, message: str, *, auto_reconnect: bool, retry_ms: int) -> Next:
        """The reader could not open the port (or ask the board): retry, or give up."""
        if self.outage is not None and self.port is not None:  # still away: keep trying
            return Next(LinkEvent.RETRY, f"{self.board_label()} is away · waiting for it "
                        "to come back", RECONNECT_MS, False)
        if auto_reconnect:
            return Next(LinkEvent.RETRY, f"{message} · retrying", retry_ms, False)
        return Next(LinkEvent.OPEN_FAILED, message, None, True)

    def dropped(self, reason: str, *, auto_reconnect: bool) -> Next:
        """The board went away: keep its place and come back to it by itself."""
        self.outage = reason
        return Next(LinkEvent.DROPPED, self.lost_detail(reason), RECONNECT_MS,
                    not auto_reconnect)

    def lost_detail(self, reason: str) -> str:
        why = reason.replace(f" from {self.port}", "").replace(str(self.port), "its port")
        return f"lost {self.board_label()}: {why} · reconnecting"
