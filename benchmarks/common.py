"""Shared pieces of the benchmark harness: results, statistics, child processes, memory.

Every benchmark returns :class:`Figure` objects: one measured number, the target it is
judged against, and the physical limit or peer it is a ratio of. Times are medians of
repeats taken in the same run (the machine is shared and noisy); ratios are formed from
numbers measured minutes apart at most.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_DIR = ROOT / "resources" / "examples" / "vibration"


@dataclass
class Figure:
    """One benchmark figure. ``op`` is how ``value`` is judged against ``target``."""

    key: str
    value: float | bool | None
    unit: str = ""
    target: float | bool | None = None
    op: str = ">="  # ">=", "<=", "==" or "" (no target)
    reference: str = ""  # the limit or peer the figure is compared with
    note: str = ""  # how it was measured / why it is what it is
    samples: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return False if self.op else None
        if not self.op or self.target is None:
            return None
        if self.op == "==":
            return self.value == self.target
        if self.op == ">=":
            return float(self.value) >= float(self.target)
        return float(self.value) <= float(self.target)

    def target_text(self) -> str:
        if not self.op or self.target is None:
            return "—"
        if isinstance(self.target, bool):
            return str(self.target).lower()
        op = {">=": "≥", "<=": "≤", "==": "="}[self.op]
        return f"{op} {self.target:g}"

    def value_text(self) -> str:
        v = self.value
        if v is None:
            return "n/a"
        if isinstance(v, bool):
            return str(v).lower()
        if abs(v) >= 100:
            text = f"{v:.0f}"
        elif abs(v) >= 10:
            text = f"{v:.1f}"
        else:
            text = f"{v:.3g}" if abs(v) < 1 else f"{v:.2f}"
        return f"{text} {self.unit}".strip()


class BenchmarkError(RuntimeError):
    """A benchmark could not measure (the figure is reported as n/a with this reason)."""


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def vs_smpclient(key: str, ours: list[float], theirs: list[float], reference: str,
                 what: str, strategies: dict[str, str]) -> Figure:
    """TinyOps' seconds over smpclient's best working strategy, measured in the same run
    (target: at most 1.0). ``what`` names the transfer in the note."""
    return Figure(key, round(median(ours) / median(theirs), 3), "×", 1.0, "<=",
                  reference=reference,
                  note=f"{what}: TinyOps {median(ours):.2f} s, smpclient "
                       f"{median(theirs):.2f} s",
                  samples=[round(a / b, 3) for a, b in zip(ours, theirs, strict=True)],
                  extra={"tinyops_s": ours, "smpclient_s": theirs, "strategies": strategies})


def best_strategy(strategies: Sequence[tuple[str, Any]],
                  timed: Callable[[Any], float]) -> tuple[float, str, dict[str, str]]:
    """The peer of a ``vs_smpclient`` figure: ``timed(strategy)`` (seconds, on a fresh board
    each time) for every smpclient fragmentation strategy; the fastest that worked wins.
    Returns (seconds, its name, what each strategy gave)."""
    tried: dict[str, str] = {}
    best: tuple[float, str] | None = None
    for name, strategy in strategies:
        try:
            seconds = timed(strategy)
        except Exception as exc:  # a strategy the firmware cannot take: not the peer
            tried[name] = f"failed ({type(exc).__name__}: {str(exc)[:60]})"
            continue
        tried[name] = f"{seconds:.2f} s"
        if best is None or seconds < best[0]:
            best = (seconds, name)
    if best is None:
        raise BenchmarkError(f"no smpclient strategy worked: {tried}")
    return best[0], best[1], tried


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1), nearest-rank on sorted values."""
    ordered = sorted(values)
    if not ordered:
        raise BenchmarkError("no samples")
    index = min(len(ordered) - 1, max(0, round(q * len(ordered) + 0.5) - 1))
    return float(ordered[index])


def repeat(fn: Callable[[], float], times: int) -> list[float]:
    return [fn() for _ in range(times)]


def rss_mb(pid: int) -> float | None:
    """Resident set size of ``pid`` in MB (Linux /proc), None if it is gone."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        return None
    return None


def python() -> str:
    """The interpreter of this environment (children skip ``uv run`` start-up)."""
    return sys.executable


def child_env(home: str | os.PathLike[str] | None = None, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("QT_QPA_PLATFORM", "offscreen")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if home is not None:
        env["TINYOPS_HOME"] = str(home)
    env.update(extra)
    return env


def last_json_line(text: str) -> dict[str, Any]:
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    raise BenchmarkError("the child printed no JSON line: " + text.strip()[-300:])


def run_child(args: list[str], *, env: dict[str, str], timeout: float,
              cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise BenchmarkError(f"{' '.join(args[:4])}… exited {proc.returncode}: "
                             + " | ".join(tail))
    return proc


class TempHome:
    """A throw-away TINYOPS_HOME (settings, records, virtual-board announcements)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="tinyops-bench-")
        self.path = Path(self._dir.name)
        self._old = os.environ.get("TINYOPS_HOME")

    def __enter__(self) -> Path:
        os.environ["TINYOPS_HOME"] = str(self.path)
        return self.path

    def __exit__(self, *exc: object) -> None:
        if self._old is None:
            os.environ.pop("TINYOPS_HOME", None)
        else:
            os.environ["TINYOPS_HOME"] = self._old
        self._dir.cleanup()


def machine() -> dict[str, Any]:
    """Where the figures came from (they mean little without it)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        load = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        load = []
    return {"cpu": cpu, "cores": os.cpu_count(), "os": f"{platform.system()} {platform.release()}",
            "python": platform.python_version(), "load_avg": load,
            "time": time.strftime("%Y-%m-%d %H:%M:%S %z")}
