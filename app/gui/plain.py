"""Plain-language errors: no raw errno, no Python reprs, in anything the window shows.

Messages reach the window from the core, from pyserial, from the OS; most are already
written for people, but some still carry ``[Errno 5] Input/output error`` or
``SerialException('…')``. :func:`plain` rewrites those parts and leaves the rest alone.
"""

from __future__ import annotations

import errno
import re

from app.gui.workers import JobError

ERRNO_TEXT = {
    errno.ENOENT: "not found",
    errno.EACCES: "permission denied (see `tinyops doctor`)",
    errno.EPERM: "not permitted",
    errno.EBUSY: "busy: another program is using it",
    errno.EIO: "the connection failed (the board was unplugged or reset)",
    errno.ENXIO: "the device is not there (unplugged?)",
    errno.ENODEV: "the device is not there (unplugged?)",
    errno.ETIMEDOUT: "no answer in time",
    errno.ECONNREFUSED: "the connection was refused",
    errno.ECONNRESET: "the connection was reset",
    errno.EPIPE: "the connection broke",
    errno.ENOSPC: "the disk is full",
    errno.EROFS: "the disk is read-only",
}

_ERRNO = re.compile(r"\[(?:Errno|WinError) (\d+)\] ([^:\]\n]+?)(?::\s*'([^']*)')?(?=$|[:;,)\n])")
_EXC_CALL = re.compile(r"\b[A-Z]\w*(?:Error|Exception|Exit)\((['\"])(.*?)\1(?:,[^)]*)?\)")
_EXC_PREFIX = re.compile(r"(^|:\s)(?:[a-z_]+\.)*[A-Z]\w*(?:Error|Exception): ")
_OBJ_REPR = re.compile(r"<(?:[\w.]+\.)?(\w+) object at 0x[0-9a-fA-F]+>")


def _errno_text(m: re.Match[str]) -> str:
    code, text, name = int(m.group(1)), m.group(2), m.group(3)
    out = ERRNO_TEXT.get(code, text.strip().lower())
    return f"{name}: {out}" if name else out


def plain(text: str) -> str:
    """``text`` without errno numbers, exception reprs or object addresses."""
    if not text:
        return text
    out = _ERRNO.sub(_errno_text, text)
    out = _EXC_CALL.sub(lambda m: m.group(2), out)
    out = _EXC_PREFIX.sub(lambda m: m.group(1), out)
    out = _OBJ_REPR.sub(lambda m: m.group(1), out)
    # "port X: X: not found" (the path named twice) → once
    out = re.sub(r"(\S+): \1: ", r"\1: ", out)
    return out.strip()


def plain_error(err: JobError) -> JobError:
    """A bug (``expected`` False) keeps its exception name, said as what it is; everything
    else is rewritten by :func:`plain`."""
    if not err.expected and not err.cancelled:
        message = f"TinyOps hit an internal error ({err.message})"
    else:
        message = plain(err.message)
    return JobError(message, plain(err.hint) if err.hint else err.hint, err.kind,
                    err.cancelled, err.expected, err.detail)
