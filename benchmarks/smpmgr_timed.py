"""Run the ``smpmgr`` CLI unchanged, timing only its file upload (not start-up or connect).

``python -m benchmarks.smpmgr_timed --port P file upload SRC DEST`` behaves exactly like
``smpmgr --port P file upload SRC DEST``; on exit it prints ``SMPMGR_UPLOAD_S=<seconds>`` to
stderr: the time smpmgr's own upload coroutine (``upload_with_progress_bar``, which drives
``SMPClient.upload_file``) took. The wrapper replaces nothing inside it.
"""

from __future__ import annotations

import sys
import time

MARK = "SMPMGR_UPLOAD_S="


def main() -> int:
    import smpmgr.file_management as fm
    from smpmgr.main import app

    original = fm.upload_with_progress_bar
    timings: list[float] = []

    async def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        try:
            return await original(*args, **kwargs)
        finally:
            timings.append(time.perf_counter() - started)

    fm.upload_with_progress_bar = timed
    code = 0
    try:
        app(prog_name="smpmgr")
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    if timings:
        sys.stderr.write(f"{MARK}{timings[-1]:.6f}\n")
    return code


if __name__ == "__main__":
    sys.exit(main())
