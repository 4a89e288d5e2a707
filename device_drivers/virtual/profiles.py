"""Configurations of the SMP server the virtual board imitates (``tinyops sim --profile``).

Each profile is a real Zephyr 4.4 build configuration, measured against smpclient's
native_sim fixtures (``tests/firmware/test_conformance.py`` checks the default one):

- ``zephyr-default`` — stock ``native_sim_serial``: MCUmgr params 384 B x 4 buffers,
  console lines of at most 128 bytes (newline included), and a UART receive pool of
  2 line buffers: more than 2 lines arriving in one burst (one poll of the UART,
  ~10 ms on native_sim) are dropped with ``Insufficient buffers, fragment dropped``,
  so their frame is never answered.
- ``tinyops-runtime`` (the default) — how a board running the TinyOps runtime is built:
  Zephyr's uart_mcumgr as stock (128-byte lines, longer ones dropped; a finite receive
  pool; Zephyr's answers), with the buffers the runtime group needs (an ``infer`` request
  for a small model is ~2 KB): 4096 B x 4 and a pool of 48 line buffers, enough for one
  full frame in a burst but not two (a host must measure before pipelining).
- ``big-buffers`` — like Zephyr's ``buf2048`` / ``line512`` builds: 2048 B x 4, 512-byte
  lines, a receive pool of 16 line buffers.
- ``lenient`` — the virtual board before issue 10: 4 KB frames, lines of any length, no
  receive pool, and a bad upload offset answered without Zephyr's ``len`` field. Kept
  only until the host link sizes frames for a 2-line pool and parses that answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_drivers.errors import InputError


@dataclass(frozen=True)
class Profile:
    name: str
    buf_size: int
    """``CONFIG_MCUMGR_TRANSPORT_NETBUF_SIZE``: the largest decoded SMP frame accepted."""
    buf_count: int
    """``CONFIG_MCUMGR_TRANSPORT_NETBUF_COUNT``."""
    line_max: int | None
    """Bytes of one console line, newline included (``CONFIG_UART_MCUMGR_RX_BUF_SIZE``);
    None: any length."""
    rx_pool: int | None
    """Line buffers of the UART receive pool (``CONFIG_UART_MCUMGR_RX_BUF_COUNT``);
    None: unlimited."""
    rx_poll_ms: float
    """How long one burst lasts: bytes arriving this soon after the first byte are
    handed to the receive pool together (native_sim polls its pty every ~10 ms)."""
    summary: str
    offset_error_len: bool = True
    """Zephyr adds ``len`` (the expected offset) to a bad-offset upload error; smpclient
    7.3.0 cannot parse that answer (its error classes forbid extra fields)."""

    @property
    def strict(self) -> bool:
        """Whether the console receive path drops lines like Zephyr's uart_mcumgr."""
        return self.line_max is not None or self.rx_pool is not None


PROFILES: dict[str, Profile] = {p.name: p for p in (
    Profile("zephyr-default", 384, 4, 128, 2, 10.0,
            "stock Zephyr 4.4 SMP server: 384 B x 4, 128-byte lines, 2 line buffers"),
    Profile("tinyops-runtime", 4096, 4, 128, 48, 10.0,
            "a TinyOps runtime build: 4096 B x 4, 128-byte lines, 48 line buffers"),
    Profile("big-buffers", 2048, 4, 512, 16, 10.0,
            "Zephyr buf2048/line512/bigrx builds: 2048 B x 4, 512-byte lines, 16 line buffers"),
    Profile("lenient", 4096, 4, None, None, 0.0,
            "the pre-issue-10 virtual board: 4 KB frames, any line length, no receive pool",
            offset_error_len=False),
)}

DEFAULT_PROFILE = "tinyops-runtime"
"""What ``tinyops sim`` is without ``--profile``: a TinyOps runtime board, strict like
Zephyr (``zephyr-default`` is the stock server the conformance test compares with)."""


def get_profile(name: str | Profile | None = None) -> Profile:
    """The profile called ``name`` (None: ``DEFAULT_PROFILE``); InputError if unknown."""
    if isinstance(name, Profile):
        return name
    key = name or DEFAULT_PROFILE
    try:
        return PROFILES[key]
    except KeyError:
        raise InputError(f"unknown virtual-board profile {key!r}",
                         "known profiles: " + ", ".join(PROFILES)) from None
