"""What the Fleet page's rollout panel shows, and what it lets a person do (Qt-free).

The panel (``app/gui/pages/fleet_rollouts.py``) is a thin view over this module: a
:class:`Snapshot` read from the rollout store off the GUI thread (:func:`load_snapshot`),
turned into table rows, device counts per state, the last gate's figures, the halt reason,
the recent events; which actions a rollout's state allows (:func:`allowed`); and the
confirmation naming how many devices an action touches (:func:`confirmation`).

States come from ``fleet_ops.rollout.plan`` (``RolloutState``, ``DeviceStep``: ``str`` enums);
this module reads them by value, so it works with the enums and with plain strings alike.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# device states in the order the panel shows them (DeviceStep values)
DEVICE_STATES = ("pending", "offered", "transferring", "installed", "healthy", "skipped",
                 "failed", "rolled_back", "rollback_failed")
IN_FLIGHT = ("offered", "transferring")
NOT_YET = ("pending", *IN_FLIGHT)  # still to take the model
TOOK = ("installed", "healthy")  # run the new model now (what a rollback returns)
FINAL_STATES = ("completed", "aborted", "rolled_back")
ACTION_TIPS = {
    "pause": "Pause the selected rollout: transfers in flight finish, nothing new is sent",
    "resume": "Resume the selected rollout where it stopped (starts its orchestrator)",
    "abort": "Abort the selected rollout: no device is sent anything more; each keeps "
             "the model it runs",
    "rollback": "Return the devices that took this rollout's model to their previous model "
                "(they keep it; no transfer)",
}
ACTIONS = ("pause", "resume", "abort", "rollback")
ACTION_LABELS = {"pause": "Pause", "resume": "Resume", "abort": "Abort",
                 "rollback": "Roll back"}

# rollout state → the actions it allows
_ALLOWED: dict[str, tuple[str, ...]] = {
    "created": ("resume", "abort"),
    "running": ("pause", "abort", "rollback"),
    "paused": ("resume", "abort", "rollback"),
    "halted": ("resume", "abort", "rollback"),
    "completed": ("rollback",),
    "aborted": ("rollback",),
    "rolling_back": (),
    "rolled_back": (),
}


def value(x: Any) -> str:
    """An enum's value or a string, lower case (``RolloutState.RUNNING`` → ``running``)."""
    return str(getattr(x, "value", x)).lower()


@dataclass
class Snapshot:
    """What one refresh read from the store (built off the GUI thread)."""

    rollouts: list[Any] = field(default_factory=list)  # fleet_ops.rollout.plan.Rollout
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # id → state → n
    selected: str | None = None
    events: list[Any] = field(default_factory=list)  # the selected rollout's, newest first
    error: str | None = None  # the store could not be read: why (the last view stays)
    holder: str | None = None  # who runs the selected rollout ("host:pid since …"), if anyone

    def rollout(self, rollout_id: str | None) -> Any | None:
        return next((r for r in self.rollouts if r.id == rollout_id), None)


@dataclass(frozen=True)
class Row:
    id: str
    model: str
    state: str
    step: str
    devices: str
    updated: str

    def cells(self) -> tuple[str, ...]:
        return (self.id[:8], self.model, self.state.replace("_", " "), self.step,
                self.devices, self.updated)


COLUMNS = ("Rollout", "Model", "State", "Step", "Devices", "Updated")


def normalise_counts(counts: Mapping[Any, int] | None) -> dict[str, int]:
    out = {s: 0 for s in DEVICE_STATES}
    for k, n in (counts or {}).items():
        out[value(k)] = out.get(value(k), 0) + int(n)
    return out


def step_text(rollout: Any) -> str:
    """``2 of 4 (25 %)``: the current step (1-based) of the plan's steps."""
    steps = list(rollout.steps or [])
    if not steps:
        return "—"
    i = max(0, min(int(rollout.step_index), len(steps) - 1))
    return f"{i + 1} of {len(steps)} ({steps[i]} %)"


def devices_text(counts: Mapping[str, int]) -> str:
    """``12 of 50 updated``: devices that run the model of those in the rollout."""
    total = sum(counts.values())
    took = sum(counts.get(s, 0) for s in TOOK)
    return f"{took} of {total} updated"


def _time(t: Any) -> str:
    if t is None:
        return "—"
    if hasattr(t, "strftime"):
        return str(t.strftime("%Y-%m-%d %H:%M:%S"))
    return str(t).replace("T", " ")[:19]


def rows(snap: Snapshot) -> list[Row]:
    out = []
    for r in snap.rollouts:
        counts = normalise_counts(snap.counts.get(r.id))
        out.append(Row(r.id, r.model_name, value(r.state), step_text(r),
                       devices_text(counts), _time(r.updated)))
    return out


def count_items(counts: Mapping[Any, int] | None) -> list[tuple[str, int]]:
    """(state, n) for the states that have devices, in :data:`DEVICE_STATES` order."""
    c = normalise_counts(counts)
    return [(s.replace("_", " "), n) for s, n in c.items() if n]


def halt_reason(rollout: Any) -> str:
    """Why it halted (or aborted): the stored reason, else empty."""
    if value(rollout.state) in ("halted", "aborted", "rolled_back", "rolling_back"):
        return str(rollout.halt_reason or "")
    return ""


_NOT_FIGURES = ("step", "per_device", "baseline", "counts")
NOTABLE = ("failed", "skipped", "forged", "retry", "lock")  # device events worth a line
EVENTS_READ = 500  # newest events read per refresh (gate decisions and notable ones shown)
EVENTS_SHOWN = 30


def notable(events: Iterable[Any]) -> list[Any]:
    """The rollout's own decisions and the device events a person must see (failures,
    skips, forged reports), not every device's sent/installed line."""
    out = [e for e in events if not getattr(e, "device_id", None) or value(e.kind) in NOTABLE]
    return out[:EVENTS_SHOWN]


@dataclass(frozen=True)
class GateFigure:
    name: str
    took: str  # the devices that took the model
    rest: str  # the devices that have not
    breached: bool


def _num(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, float):
        return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"
    if isinstance(x, (list, tuple)):
        return ", ".join(map(str, x[:5])) + (f" (+{len(x) - 5})" if len(x) > 5 else "")
    return str(x)


def gate_figures(events: Iterable[Any]) -> tuple[str, list[GateFigure]]:
    """The last gate decision (``gate_passed`` or ``halted``) and its figures.

    Returns (a one-line heading, the figures). Figures are read from the event's ``figures``
    dict: a metric maps to ``{"took": x, "rest": y}`` (compared groups), or to one number,
    or the dict holds ``{"took": {metric: x}, "rest": {metric: y}}``;
    ``breaches``/``rule`` name what broke (shown as breached)."""
    for e in events:  # newest first
        kind = value(e.kind)
        if kind not in ("gate_passed", "halted"):
            continue
        figs = dict(e.figures or {})
        broken = set()
        for b in figs.pop("breaches", []) or []:
            if isinstance(b, Mapping):
                broken.add(str(b.get("metric") or b.get("rule") or ""))
        rule = figs.pop("rule", None)
        if rule:
            broken.add(str(rule))
        took, rest = figs.get("took"), figs.get("rest")
        if isinstance(took, Mapping) and isinstance(rest, Mapping | None):
            # {"took": {metric: x}, "rest": {metric: y}, …}: one row per metric
            figs = {k: v for k, v in figs.items() if k not in ("took", "rest")}
            for name in dict.fromkeys([*took, *(rest or {})]):
                figs[name] = {"took": took.get(name), "rest": (rest or {}).get(name)}
        out = []
        for name, v in figs.items():
            if name in _NOT_FIGURES or (isinstance(v, Mapping) and "took" not in v
                                        and "rest" not in v):
                continue  # per-device lists, the baseline: in the events, not the table
            hit = any(name and (name == b or b.startswith(name)) for b in broken)
            if isinstance(v, Mapping) and ("took" in v or "rest" in v):
                out.append(GateFigure(name, _num(v.get("took")), _num(v.get("rest")), hit))
            else:
                out.append(GateFigure(name, _num(v), "", hit))
        head = ("passed" if kind == "gate_passed" else "halted") + f" at {_time(e.time)}"
        if kind == "gate_passed" and e.why:  # a halt's why is the halt reason, shown already
            head += f": {e.why}"
        return head, out
    return "no gate decided yet", []


def event_line(e: Any) -> str:
    dev = f" {e.device_id}" if getattr(e, "device_id", None) else ""
    why = f": {e.why}" if e.why else ""
    return f"{_time(e.time)[11:]} {value(e.kind)}{dev}{why}"


def runner_text(rollout: Any, holder: str | None) -> str:
    """Who works on the rollout: its orchestrator, or that none does (and what starts one)."""
    if holder:
        return f"orchestrator: {holder}"
    if value(rollout.state) in ("created", "running", "rolling_back"):
        return "no orchestrator runs it now: Resume starts one"
    return ""


def allowed(rollout: Any | None) -> tuple[str, ...]:
    """The actions this rollout's state allows (none while a rollback runs or when done)."""
    if rollout is None:
        return ()
    acts = _ALLOWED.get(value(rollout.state), ())
    pending = value(getattr(rollout, "requested", None) or "")
    return tuple(a for a in acts if a != pending)  # asked already: not twice


def touched(action: str, counts: Mapping[Any, int] | None) -> int:
    """How many devices ``action`` touches.

    pause/abort: the devices not yet updated (they will not be sent the model, for now or
    at all); resume: the devices still to update; rollback: the devices that took the model
    (and those that failed mid-update, which are verified on their previous model)."""
    c = normalise_counts(counts)
    if action in ("pause", "abort", "resume"):
        return sum(c[s] for s in NOT_YET)
    if action == "rollback":
        return sum(c[s] for s in TOOK)
    raise ValueError(f"unknown rollout action {action!r}")


def _devices(n: int) -> str:
    return f"{n} device" + ("" if n == 1 else "s")


def confirmation(action: str, rollout: Any, counts: Mapping[Any, int] | None) -> tuple[str, str]:
    """(title, text) of the question asked before ``action``: it names the device count."""
    n = touched(action, counts)
    name = f"{rollout.model_name} ({rollout.id[:8]}, fleet {rollout.fleet})"
    if action == "pause":
        text = (f"Pause the rollout of {name}? {_devices(n)} not yet updated will wait; "
                "devices already updated keep the new model.")
    elif action == "resume":
        text = (f"Resume the rollout of {name}? It continues at step {step_text(rollout)} "
                f"and may send the model to the {_devices(n)} not yet updated.")
    elif action == "abort":
        text = (f"Abort the rollout of {name}? {_devices(n)} not yet updated will never be "
                "sent the model; devices already updated keep it (roll back to return them). "
                "This cannot be undone.")
    else:
        text = (f"Roll back the rollout of {name}? {_devices(n)} that took the model return "
                "to their previous model, each verified.")
    return f"{ACTION_LABELS[action]} rollout", text


def create_confirmation(model_name: str, fleet: str, n_devices: int | None,
                        steps: list[int]) -> str:
    first = ""
    if n_devices:
        first = f" (about {_devices(max(1, n_devices * steps[0] // 100))} in the first step)"
    who = _devices(n_devices) if n_devices else "every device the fleet reports"
    return (f"Start a rollout of {model_name} to {who} of fleet {fleet}, in steps "
            f"{' → '.join(f'{s} %' for s in steps)}{first}?")


def parse_steps(text: str) -> list[int]:
    """``5,25,50,100`` → [5, 25, 50, 100]; rising percentages ending at 100, else ValueError."""
    try:
        steps = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        raise ValueError(f"steps {text!r}: give percentages such as 5,25,50,100") from None
    if not steps or steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) \
            or steps != sorted(set(steps)):
        raise ValueError(f"steps {text!r}: rising percentages (1–100) ending at 100, "
                         "such as 5,25,50,100")
    return steps


def load_snapshot(store: Any, selected: str | None, events: int = EVENTS_READ) -> Snapshot:
    """Read everything the panel shows (call it off the GUI thread: it waits on the database)."""
    rollouts = list(store.list())
    counts = {r.id: normalise_counts(store.counts(r.id)) for r in rollouts}
    if selected not in counts:
        selected = rollouts[0].id if rollouts else None
    evs = list(reversed(store.events(selected, events))) if selected else []
    evs.sort(key=lambda e: e.time, reverse=True)  # newest first (stable: ties keep theirs)
    holder = store.holder(selected) if selected and hasattr(store, "holder") else None
    return Snapshot(rollouts, counts, selected, evs, holder=holder)
