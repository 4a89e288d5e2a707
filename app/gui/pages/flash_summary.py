"""The Flash page's verdict: one line per board of the current batch, and a count.

A batch is the boards started together (or while others still run); the next flash once
all have finished starts a new one. Nothing is shown before a flash: an empty summary has
no text. Qt-free (the page renders :meth:`FlashSummary.text` and :attr:`color`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class FlashSummary:
    lines: dict[str, tuple[bool | None, str]] = field(default_factory=dict)
    """port -> (verified? None while running, one line)."""

    def begin(self, port: str, running: bool) -> None:
        """A flash to ``port`` starts; ``running``: other flashes of this batch still run."""
        if not running:
            self.lines.clear()
        self.lines[port] = (None, f"… {port}: flashing")

    def done(self, port: str, ok: bool, line: str) -> None:
        self.lines[port] = (ok, line)

    @property
    def state(self) -> str:
        """``empty``, ``running``, ``ok`` (all verified) or ``failed`` (any failed)."""
        if not self.lines:
            return "empty"
        states = [ok for ok, _ in self.lines.values()]
        if any(ok is False for ok in states):
            return "failed"
        return "running" if any(ok is None for ok in states) else "ok"

    def text(self) -> str:
        if not self.lines:
            return ""
        rows = [line for _, line in self.lines.values()]
        if len(rows) == 1:
            return rows[0]
        states = [ok for ok, _ in self.lines.values()]
        head = f"{states.count(True)} of {len(states)} boards verified"
        if states.count(False):
            head += f", {states.count(False)} failed"
        if states.count(None):
            head += f", {states.count(None)} still flashing"
        return "\n".join([head, *rows])


def validation_text(r: dict[str, Any]) -> tuple[bool, str]:
    """(ok, one line) for a validate-on-target result."""
    ok = bool(r.get("ok"))
    acc = r.get("accuracy_device")
    parts = [("✓ " if ok else "✗ ") + str(r.get("verify_text", "")),
             f"top-1 agreement {100 * r.get('agreement', 0):.1f} %"]
    if acc is not None:
        parts.append(f"accuracy on device {100 * acc:.1f} % "
                     f"(host {100 * (r.get('accuracy_host') or 0):.1f} %)")
    parts.append(f"latency median {r.get('latency_us_median', 0):.0f} µs, "
                 f"p95 {r.get('latency_us_p95', 0):.0f} µs")
    return ok, " · ".join(parts)
