"""``ingest_ratio``: telemetry bytes per second through the reader path ÷ USB full-speed.

The stream: JSON lines (the runtime's format), Arduino plotter lines (8 labelled values)
and Edge Impulse prediction blocks, in runs long enough for auto-detection to follow the
switches (a board reflashed with other firmware), with an SMP response frame after every
50 lines. Two measurements on the same bytes:

- **reader path** (the figure): a writer thread pushes the stream into a pseudo-terminal
  as fast as the kernel takes it; a real ``DeviceSession`` on the other end separates SMP
  frames from text with smpclient's serial transport and feeds the text to its
  ``TelemetryParser``; the consumer drains ``session.telemetry()`` every 10 ms like the
  GUI's reader thread. Timed from the first write to the last telemetry byte parsed.
- **parser only**: ``TelemetryParser.feed`` on the non-SMP remainder in 4 KB chunks (what
  one tty read returns), ``drain()`` every 16 chunks: the parser's own ceiling.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import tty

from benchmarks.common import BenchmarkError, Figure, median

USB_FS_BPS = 1_200_000  # USB full-speed bulk payload limit, bytes/s
LINES_PER_RUN = 2000
SMP_EVERY = 50


def _json_line(i: int) -> str:
    return json.dumps({"t": i, "scores": {"normal": 0.91, "imbalance": 0.06,
                                          "bearing_fault": 0.03},
                       "latency_us": 1234 + i % 7, "arena_used": 20480, "heap_free": 100000,
                       "temp_c": 36.5, "vcc_mv": 3300, "cpu_load": 0.42})


def _arduino_line(i: int) -> str:
    return ",".join(f"ch{c}:{(i * (c + 1)) % 1000 / 10:.2f}" for c in range(8))


def _ei_block(i: int) -> list[str]:
    return [f"Predictions (DSP: {i % 5} ms., Classification: 1 ms., Anomaly: 0 ms.): ",
            f"    normal: {0.9 - (i % 10) / 100:.5f}", "    imbalance: 0.05859",
            "    bearing_fault: 0.03125"]


def _smp_frame() -> bytes:
    from smp import os_management as osm

    from device_drivers.virtual.smp_server import encode_frame

    return encode_frame(bytes(osm.EchoWriteResponse(r="x" * 96).BYTES))


def build_stream(repeats: int) -> tuple[bytes, bytes, int]:
    """(the stream with SMP frames, its telemetry text alone, records the parser must see)."""
    frame = _smp_frame()
    parts: list[bytes] = []
    records = 0
    for rep in range(repeats):
        for kind in ("json", "arduino", "ei"):
            lines: list[str] = []
            for i in range(rep * LINES_PER_RUN, (rep + 1) * LINES_PER_RUN):
                if kind == "json":
                    lines.append(_json_line(i))
                elif kind == "arduino":
                    lines.append(_arduino_line(i))
                else:
                    lines.extend(_ei_block(i))
            records += LINES_PER_RUN
            for k in range(0, len(lines), SMP_EVERY):
                parts.append(("\n".join(lines[k:k + SMP_EVERY]) + "\n").encode())
                parts.append(frame)
    text = b"".join(p for p in parts if p is not frame)
    return b"".join(parts), text, records - 1  # the first line is never used (usually partial)


def parser_only(text: bytes) -> float:
    """Bytes/s of ``TelemetryParser`` alone on ``text`` (4 KB feeds, a drain every 16)."""
    from device_drivers.telemetry import TelemetryParser

    parser = TelemetryParser()
    step = 4096
    started = time.perf_counter()
    parsed = 0
    for n, pos in enumerate(range(0, len(text), step)):
        parser.feed(text[pos:pos + step], 1.0)
        if n % 16 == 15:
            parsed += parser.drain().parsed
    parsed += parser.drain().parsed
    elapsed = time.perf_counter() - started
    if parsed == 0:
        raise BenchmarkError("the parser parsed nothing")
    return len(text) / elapsed


def session_path(stream: bytes, telemetry: int, records: int,
                 timeout_s: float = 120.0) -> tuple[float, int]:
    """Bytes/s of telemetry through a real DeviceSession reading a pty; (rate, parsed)."""
    from device_drivers.link import DeviceSession

    master, slave = os.openpty()
    tty.setraw(slave)
    port = os.ttyname(slave)
    session = DeviceSession.open(port, read_params=False, timeout_s=2.0)
    stop = threading.Event()

    def writer() -> None:
        view = memoryview(stream)
        try:
            while view and not stop.is_set():
                n = os.write(master, view[:65536])
                view = view[n:]
        except OSError:
            pass

    parsed = 0
    try:
        session.telemetry()
        thread = threading.Thread(target=writer, name="bench-writer", daemon=True)
        started = time.perf_counter()
        thread.start()
        deadline = started + timeout_s
        while session.bytes_in < telemetry:
            parsed += session.telemetry().parsed
            if time.perf_counter() > deadline:
                raise BenchmarkError(f"the session read {session.bytes_in}/{telemetry} B "
                                     f"in {timeout_s:.0f} s")
            time.sleep(0.01)
        elapsed = time.perf_counter() - started
        parsed += session.telemetry().parsed
    finally:
        stop.set()
        session.close()
        for fd in (master, slave):
            with contextlib.suppress(OSError):
                os.close(fd)
    if parsed < records * 0.99:
        raise BenchmarkError(f"the session parsed {parsed} of {records} records")
    return telemetry / elapsed, parsed


def run(quick: bool) -> list[Figure]:
    repeats = 2 if quick else 5
    stream, text, records = build_stream(3 if quick else 6)
    telemetry = len(text)
    parser_rates = [parser_only(text) for _ in range(repeats)]
    session_rates = []
    parsed = 0
    for _ in range(repeats):
        rate, parsed = session_path(stream, telemetry, records)
        session_rates.append(rate)
    session_bps = median(session_rates)
    parser_bps = median(parser_rates)
    smp_share = 1 - telemetry / len(stream)
    return [
        Figure("ingest_ratio", session_bps / USB_FS_BPS, "×", 10, ">=",
               f"1.2 MB/s USB FS bulk; measured {session_bps / 1e6:.2f} MB/s",
               f"real DeviceSession on a pty, JSON/Arduino/EI runs + SMP frames "
               f"({smp_share:.1%} of bytes), {parsed} records parsed per run",
               samples=[r / USB_FS_BPS for r in session_rates],
               extra={"bytes_per_run": telemetry}),
        Figure("ingest_parser_ratio", parser_bps / USB_FS_BPS, "×", 10, ">=",
               f"1.2 MB/s USB FS bulk; measured {parser_bps / 1e6:.2f} MB/s",
               "TelemetryParser alone on the same text in 4 KB feeds (its ceiling)",
               samples=[r / USB_FS_BPS for r in parser_rates]),
    ]
