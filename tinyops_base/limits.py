"""Resource limits for a child process that runs untrusted models (POSIX ``setrlimit``).

The parent passes the limits on the child's command line (``limit_argv``); the child applies
them first thing (``set_limits``), before it imports anything heavy or reads a request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import ClassVar, TypeVar

log = logging.getLogger(__name__)

LIMITS = (("--max-address-space", "RLIMIT_AS"), ("--max-cpu-s", "RLIMIT_CPU"),
          ("--max-file-size", "RLIMIT_FSIZE"))


def limit_argv(address_space: int, cpu_s: int, file_size: int) -> list[str]:
    """The command-line flags ``set_limits`` reads (0: unlimited)."""
    return ["--max-address-space", str(int(address_space)), "--max-cpu-s", str(int(cpu_s)),
            "--max-file-size", str(int(file_size))]


def set_limits(argv: list[str]) -> dict[str, int]:
    """Apply the limits given on the command line (soft = hard, CPU: hard 5 s later)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not POSIX: no limits to set
        return {}

    applied = {}
    for flag, name in LIMITS:
        if flag not in argv:
            continue
        value = int(argv[argv.index(flag) + 1])
        if value <= 0:
            continue
        hard = value + 5 if name == "RLIMIT_CPU" else value  # SIGXCPU first, then SIGKILL
        resource.setrlimit(getattr(resource, name), (value, hard))
        applied[name] = value
    return applied


def env_limit(name: str, default: int, scale: int) -> int:
    """A limit from the environment variable ``name`` (a number times ``scale``, e.g. MB);
    ``default`` when unset or not a number (logged)."""
    value = os.environ.get(name, "").strip()
    try:
        return int(float(value) * scale) if value else default
    except ValueError:
        log.warning("%s=%r is not a number; using the default", name, value)
        return default


_L = TypeVar("_L", bound="ChildLimits")


@dataclass(frozen=True)
class ChildLimits:
    """Resource limits of one kind of child process (0: unlimited). A subclass sets the
    defaults (its fields) and ``ENV``: the variables that override them (MB, s, MB)."""

    address_space: int = 0
    """``RLIMIT_AS`` in bytes."""
    cpu_s: int = 0
    """``RLIMIT_CPU`` over the child's life, in seconds (SIGXCPU, then SIGKILL 5 s later)."""
    file_size: int = 0
    """``RLIMIT_FSIZE`` in bytes."""
    ENV: ClassVar[tuple[str, str, str]] = ("", "", "")

    @classmethod
    def from_env(cls: type[_L]) -> _L:
        as_mb, cpu_s, file_mb = cls.ENV
        return cls(env_limit(as_mb, cls.address_space, 1 << 20) if as_mb else cls.address_space,
                   env_limit(cpu_s, cls.cpu_s, 1) if cpu_s else cls.cpu_s,
                   env_limit(file_mb, cls.file_size, 1 << 20) if file_mb else cls.file_size)

    def argv(self) -> list[str]:
        """The flags the child passes to :func:`set_limits`."""
        return limit_argv(self.address_space, self.cpu_s, self.file_size)
