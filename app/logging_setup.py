"""Logging: a rotating file in the user log dir, warnings to stderr, an excepthook that logs."""

from __future__ import annotations

import logging
import logging.handlers
import sys

from device_drivers import paths

_FORMAT = "%(asctime)s %(levelname)-7s %(threadName)s %(name)s: %(message)s"
_configured = False


def setup_logging(verbose: int = 0, console: bool = True) -> None:
    global _configured
    if _configured:
        return
    _configured = True
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    try:
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            paths.log_dir() / "tinyops.log", maxBytes=2_000_000, backupCount=5, encoding="utf-8"
        )
        handler.setLevel(logging.DEBUG if verbose else logging.INFO)
        handler.setFormatter(logging.Formatter(_FORMAT))
        root.addHandler(handler)
    except OSError as exc:  # read-only home, full disk: keep going without a log file
        print(f"warning: cannot write the log file: {exc}", file=sys.stderr)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        stream.setLevel(
            logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
        )
        stream.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        root.addHandler(stream)
    # Libraries that log every frame at INFO/DEBUG would drown the file.
    for noisy in ("smpclient", "smp", "asyncio", "h5py", "absl", "tensorflow"):
        logging.getLogger(noisy).setLevel(logging.WARNING)

    previous = sys.excepthook

    def _hook(exc_type, exc, tb):  # type: ignore[no-untyped-def]
        logging.getLogger("tinyops").critical("uncaught exception", exc_info=(exc_type, exc, tb))
        previous(exc_type, exc, tb)

    sys.excepthook = _hook
