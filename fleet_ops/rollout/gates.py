"""Health gates: rules that halt a rollout by themselves.

A rule is ``METRIC OP VALUE`` (``--halt-on``, comma-separated):

=================  =========================================================================
``drift>0.2``      drift score vs the model card's baseline: the mean over the devices that
                   took the model (those above the value are named)
``drifting>10%``   devices that took the model whose own drift alert fired (score above the
                   fleet view's measured threshold, 0.25 over 200 results): a share, or a
                   count (``drifting>0``); catches a drifting subset the mean hides
``confidence<-10%`` mean top-class confidence of the devices that took it, relative to those
                   that have not (``confidence<0.6``: absolute)
``latency_p95>+20%`` inference latency p95, relative (``latency_p95>5000``: microseconds)
``errors>0``       errors the devices that took it reported (sum)
``resets>0``       resets of the devices that took it (sum)
``failed>2%``      devices of the step whose update failed (``failed>3``: a count)
``silent>0``       devices that took the model and were then not heard for the window
=================  =========================================================================

:func:`evaluate` compares the devices that took the model (``took``) with the others
(``rest``) and returns one :class:`Breach` per rule broken, naming the devices and figures.
"""

from __future__ import annotations

import re
import statistics
from dataclasses import asdict, dataclass, field
from typing import Any

METRICS = ("drift", "drifting", "confidence", "latency_p95", "errors", "resets", "failed",
           "silent")
_RULE = re.compile(r"^\s*([a-z_0-9]+)\s*(>=|<=|>|<)\s*([+-]?)\s*([0-9]*\.?[0-9]+)\s*(%?)\s*$")


@dataclass(frozen=True)
class Rule:
    text: str
    metric: str
    op: str                 # > >= < <=
    value: float
    relative: bool = False  # +20% / -10%: against the devices that have not taken it
    percent: bool = False   # failed>2%, drifting>10%: a share of the devices, not a count

    def broken(self, figure: float) -> bool:
        limit = self.value
        return {">": figure > limit, ">=": figure >= limit, "<": figure < limit,
                "<=": figure <= limit}[self.op]


def parse_rules(text: str | list[str]) -> list[Rule]:
    """``"drift>0.2,latency_p95>+20%"`` → rules; ``ValueError`` saying what is wrong."""
    items = text if isinstance(text, list) else [t for t in str(text).split(",") if t.strip()]
    rules = []
    for item in items:
        m = _RULE.match(str(item))
        if not m:
            raise ValueError(f"bad rule {item!r}: write METRIC>VALUE or METRIC<VALUE, e.g. "
                             "drift>0.2, latency_p95>+20%, failed>2%, silent>0")
        metric, op, sign, number, pct = m.groups()
        if metric not in METRICS:
            raise ValueError(f"unknown metric {metric!r} in {item!r}: one of "
                             f"{', '.join(METRICS)}")
        value = float(number) * (-1 if sign == "-" else 1)
        relative = bool(pct) and metric in ("confidence", "latency_p95", "drift")
        if sign and not pct:
            raise ValueError(f"{item!r}: a signed value is a relative change, write it in % "
                             "(latency_p95>+20%)")
        if pct and metric in ("errors", "resets", "silent"):
            raise ValueError(f"{item!r}: {metric} is a count, not a percentage")
        rules.append(Rule(str(item).strip(), metric, op,
                          value / 100 if pct else value, relative,
                          percent=bool(pct) and metric in ("failed", "drifting")))
    return rules


@dataclass
class DeviceHealth:
    """One device's figures over the health window (None: not known)."""

    device_id: str
    drift: float | None = None
    confidence: float | None = None
    latency_p95: float | None = None
    errors: int = 0
    resets: int = 0
    silent: bool = False
    failed: bool = False
    drifting: bool = False  # its drift alert fired (the fleet view's threshold)
    samples: int = 0


@dataclass
class Breach:
    rule: str
    metric: str
    figure: float
    limit: float
    devices: list[str]
    figures: dict[str, Any] = field(default_factory=dict)
    compared_with: float | None = None

    def describe(self) -> str:
        what = f"{self.rule}: {self.metric} {self.figure:g}"
        if self.compared_with is not None:
            what += f" vs {self.compared_with:g} on the devices without it"
        named = ", ".join(self.devices[:10]) + (" …" if len(self.devices) > 10 else "")
        return f"{what} ({len(self.devices)} device(s): {named})" if self.devices else what

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _mean(values: list[float]) -> float | None:
    return round(statistics.fmean(values), 4) if values else None


def aggregate(devices: list[DeviceHealth]) -> dict[str, float | None]:
    """Mean figures of a group (what a relative rule compares)."""
    ok = [d for d in devices if not d.failed]
    return {"drift": _mean([d.drift for d in ok if d.drift is not None]),
            "confidence": _mean([d.confidence for d in ok if d.confidence is not None]),
            "latency_p95": _mean([d.latency_p95 for d in ok if d.latency_p95 is not None])}


def evaluate(rules: list[Rule], took: list[DeviceHealth], rest: list[DeviceHealth] | None,
             *, rest_figures: dict[str, float | None] | None = None) -> list[Breach]:
    """The rules broken by ``took`` (the step's devices that were sent the model: ``failed``
    set on those whose update failed). Relative rules compare with ``rest`` (the devices not
    running it), or ``rest_figures`` (the fleet before the rollout) when ``rest`` has none."""
    breaches = []
    mine = aggregate(took)
    other = aggregate(rest or [])
    for key, value in (rest_figures or {}).items():
        if other.get(key) is None:
            other[key] = value
    running = [d for d in took if not d.failed]
    for rule in rules:
        b = _check(rule, took, running, mine, other)
        if b is not None:
            breaches.append(b)
    return breaches


def _check(rule: Rule, took: list[DeviceHealth], running: list[DeviceHealth],
           mine: dict[str, float | None], other: dict[str, float | None]) -> Breach | None:
    m = rule.metric
    if m in ("failed", "silent", "errors", "resets", "drifting"):
        if m == "failed":
            named = [d for d in took if d.failed]
            figure = len(named) / len(took) if rule.percent and took else float(len(named))
        elif m == "drifting":
            named = [d for d in running if d.drifting]
            figure = (len(named) / len(running) if rule.percent and running
                      else float(len(named)))
        elif m == "silent":
            named = [d for d in running if d.silent]
            figure = float(len(named))
        else:
            named = [d for d in running if getattr(d, m) > 0]
            figure = float(sum(getattr(d, m) for d in running))
        if not rule.broken(figure):
            return None
        return Breach(rule.text, m, round(figure, 4), rule.value,
                      [d.device_id for d in named],
                      {d.device_id: getattr(d, m) for d in named})
    group = mine.get(m)
    if group is None:
        return None
    base = other.get(m)
    if rule.relative:
        if not base:
            return None  # nothing to compare with: the rule cannot tell
        figure = round((group - base) / base, 4)
    else:
        figure = group
    if not rule.broken(figure):
        return None
    per = {d.device_id: getattr(d, m) for d in running if getattr(d, m) is not None}

    def worse(v: float) -> bool:
        cut = base * (1 + rule.value) if rule.relative and base else rule.value
        return v > cut if rule.op.startswith(">") else v < cut

    worst = sorted((d for d, v in per.items() if worse(v)), key=lambda d: per[d],
                   reverse=rule.op.startswith(">"))
    return Breach(rule.text, m, figure, rule.value, worst, {d: per[d] for d in worst},
                  base if rule.relative else None)
