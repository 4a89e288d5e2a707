"""Fleet telemetry: bytes per second per device, raw vs summary streaming (issue 12 item 5),
and the fleet view at N = 100 and 1,000 devices through a real Mosquitto (item 6).

Bandwidth: two virtual boards (the bundled model, the runtime's default rates: one inference
per 100 ms; summary period 10 s), one streaming raw and one in summary mode, for the same
wall time; every telemetry line they make is counted as it would be published (payload) and
with the MQTT PUBLISH header for its topic (QoS 0: fixed header, length, topic).
Scale: ``fleet_scale.py``.
"""

from __future__ import annotations

import sys
import threading
import time
from typing import Any

from benchmarks.common import ROOT, BenchmarkError, Figure

TOPIC = "tinyops/default/press-0001/telemetry"


def _mqtt_overhead(payload: int, topic: str = TOPIC) -> int:
    remaining = 2 + len(topic) + payload
    return 1 + (1 if remaining < 128 else 2 if remaining < 16384 else 3) + 2 + len(topic)


def bandwidth(duration_s: float) -> dict[str, dict[str, float]]:
    from device_drivers.protocol import runtime as rt
    from device_drivers.virtual.board import VirtualBoard

    out: dict[str, dict[str, float]] = {}
    boards = {mode: VirtualBoard(board="nano33ble", seed=i) for i, mode in
              enumerate(("raw", "summary"))}
    lines: dict[str, list[bytes]] = {mode: [] for mode in boards}
    lock = threading.Lock()
    try:
        for mode, vb in boards.items():
            vb.start()
            reply, _ = vb.dispatcher.handle(rt.StreamWriteRequest(on=True, mode=mode).BYTES)
            answer = rt.StreamWriteResponse.loads(reply)
            if answer.mode != mode:
                raise BenchmarkError(f"virtual board did not switch to {mode}")

            def hook(line: bytes, mode: str = mode) -> None:
                if line:
                    with lock:
                        lines[mode].append(line.strip())

            vb.telemetry_hooks.append(hook)
        started = time.monotonic()
        time.sleep(duration_s)  # measuring a rate over wall time, not synchronising
        elapsed = time.monotonic() - started
    finally:
        for vb in boards.values():
            vb.stop()
    import json

    for mode, got in lines.items():
        if not got:
            raise BenchmarkError(f"no {mode} telemetry in {duration_s} s")
        size = sum(len(x) for x in got) / len(got)
        if mode == "raw":
            per_s = len(got) / elapsed
        else:  # a few summaries per run: their own period is the honest rate
            periods = [json.loads(x)["summary"]["period_ms"] for x in got]
            per_s = 1000.0 / (sum(periods) / len(periods))
        out[mode] = {"messages": len(got), "payload_bytes": round(size, 1),
                     "messages_per_s": round(per_s, 3),
                     "bytes_per_s": round(size * per_s, 2),
                     "mqtt_bytes_per_s": round((size + _mqtt_overhead(int(size))) * per_s, 2)}
    return out


def _broker() -> Any:
    sys.path.insert(0, str(ROOT / "tests" / "fleet"))
    from fleet_servers import Mosquitto, mosquitto_binary  # one way to start a broker

    binary = mosquitto_binary()
    if binary is None:
        raise BenchmarkError("mosquitto is not installed (apt-get install mosquitto)")
    broker = Mosquitto(binary)
    broker.start()
    return broker


def run(quick: bool) -> list[Figure]:
    from benchmarks.fleet_scale import run_scale

    bw = bandwidth(25.0 if quick else 60.0)
    raw, summ = bw["raw"], bw["summary"]
    figures = [
        Figure("fleet_raw_bytes_per_s", raw["bytes_per_s"], "B/s", op="",
               reference="one virtual board, raw: one JSON line per inference (100 ms)",
               note=f"{raw['payload_bytes']:.0f} B × {raw['messages_per_s']:.2f}/s; "
                    f"with MQTT headers {raw['mqtt_bytes_per_s']:.0f} B/s", extra=raw),
        Figure("fleet_summary_bytes_per_s", summ["bytes_per_s"], "B/s", op="",
               reference="same board, summary mode (one line per 10 s)",
               note=f"{summ['payload_bytes']:.0f} B × {summ['messages_per_s']:.3f}/s; "
                    f"{raw['bytes_per_s'] / summ['bytes_per_s']:.0f}× less than raw",
               extra=summ),
    ]
    broker = _broker()
    try:
        duration = 20.0 if quick else 60.0
        for n in (100, 1000):
            got = run_scale(broker.url, "127.0.0.1", broker.port, n, duration)
            note = (f"{got['sent']} sent, {got['acked']} acked, {got['unique']} counted, "
                    f"{got['lost']} lost, {got['duplicates']} duplicates, {duration:.0f} s at "
                    f"1 msg/s each; fleet view CPU {got['cpu_share'] * 100:.1f} % of one core")
            figures += [
                Figure(f"fleet_lag_p95_ms_{n}", got["lag_ms_p95"], "ms", 1000.0, "<=",
                       reference="publish → counted by the fleet view, QoS 1, real Mosquitto",
                       note=note, extra=got),
                Figure(f"fleet_cpu_{n}", got["cpu_share"], "cores", op="",
                       reference="fleet view process CPU time / wall time", note=note),
                Figure(f"fleet_lost_{n}", got["lost"], "", 0, "==",
                       reference="PUBACKed by the broker, never counted", note=note),
            ]
    finally:
        broker.stop()
    return figures
