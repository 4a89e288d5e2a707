"""Resource limits for a child process that runs untrusted models (POSIX ``setrlimit``).

The parent passes the limits on the child's command line (``limit_argv``); the child applies
them first thing (``set_limits``), before it imports anything heavy or reads a request.
"""

from __future__ import annotations

import logging
import os

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
