"""Fleet at scale: N simulated devices publishing through a real Mosquitto to the fleet view.

One process simulates all devices (:func:`simulate`): one paho client and one TCP
connection per device, driven by a single thread through ``selectors`` (paho's
``loop_read``/``loop_write``/``loop_misc``, no thread per client), each publishing one
telemetry message per second at QoS 1, spread evenly over the second. The fleet view
(``FleetMonitor``, subscribed at QoS 0 since issue 19) runs in a child process of its own
(``python -m benchmarks.fleet_scale monitor URL``) so its CPU time is its own; it stamps each
message when it has been counted (``FleetMonitor.on_counted``). Lag = counted - ``sent``
(both clocks are this machine's). Lost = acknowledged by the broker (PUBACK) but never counted.
"""

from __future__ import annotations

import json
import os
import resource
import selectors
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT

LABELS = ("normal", "imbalance", "bearing_fault")


def _payload(dev: int, seq: int) -> bytes:
    top = LABELS[(dev + seq) % 3]
    scores = {lab: (0.94 if lab == top else 0.03) for lab in LABELS}
    return json.dumps({"t": seq * 1000, "scores": scores, "latency_us": 1800 + seq % 50,
                       "heap_free": 40960, "seq": seq, "sent": time.time()}).encode()


def simulate(host: str, port: int, n: int, duration_s: float, fleet: str = "scale",
             rate_hz: float = 1.0) -> dict[str, Any]:
    """Connect ``n`` devices, publish for ``duration_s``, wait for every PUBACK (≤ 10 s)."""
    import paho.mqtt.client as paho

    sel = selectors.DefaultSelector()
    clients: list[Any] = []
    acked = [0]
    lock = threading.Lock()

    def on_publish(_c: Any, _u: Any, _mid: Any, _rc: Any, _p: Any) -> None:
        with lock:
            acked[0] += 1

    def pump(timeout: float) -> None:
        for key, _ in sel.select(timeout):
            key.data.loop_read()
        for c in clients:
            if c.want_write():
                c.loop_write()

    for i in range(n):
        c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"scale-{i}")
        c.on_publish = on_publish
        c.max_inflight_messages_set(100)
        c.connect(host, port, keepalive=60)
        sel.register(c.socket(), selectors.EVENT_READ, c)
        clients.append(c)
        if i % 50 == 49:
            pump(0)
    deadline = time.monotonic() + 30
    while not all(c.is_connected() for c in clients):
        if time.monotonic() > deadline:
            raise RuntimeError("devices did not all connect within 30 s")
        pump(0.05)
    topics = [f"tinyops/{fleet}/dev-{i:05d}/telemetry" for i in range(n)]
    period = 1.0 / rate_hz
    sent = 0
    started = time.monotonic()
    last_misc = started
    ticks = int(duration_s * rate_hz)
    for k in range(ticks * n):  # device i publishes at i/n of each period
        tick, dev = divmod(k, n)
        due = started + tick * period + dev * period / n
        while True:
            now = time.monotonic()
            if now >= due:
                break
            pump(min(0.01, due - now))
        clients[dev].publish(topics[dev], _payload(dev, tick), qos=1)
        sent += 1
        if now - last_misc > 1.0:
            for c in clients:
                c.loop_misc()
            last_misc = now
    publish_s = time.monotonic() - started
    deadline = time.monotonic() + 10
    while acked[0] < sent and time.monotonic() < deadline:
        pump(0.02)
    for c in clients:
        c.disconnect()
        c.loop_write()
        c.socket() and sel.unregister(c.socket())  # type: ignore[func-returns-value]
    return {"devices": n, "sent": sent, "acked": acked[0], "publish_s": round(publish_s, 2)}


class MonitorChild:
    """The fleet view in its own process; :meth:`finish` says how many it should count."""

    def __init__(self, url: str, profile: str | None = None) -> None:
        cmd = [sys.executable, "-m", "benchmarks.fleet_scale", "monitor", url]
        if profile:
            cmd += ["--profile", profile]
        self.proc = subprocess.Popen(cmd, cwd=ROOT, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=dict(os.environ))
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"fleet view child did not start: {line!r}")

    def start(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("start\n")
        self.proc.stdin.flush()

    def finish(self, expected: int) -> dict[str, Any]:
        out, _ = self.proc.communicate(f"{expected}\n", timeout=120)
        return json.loads(out.strip().splitlines()[-1])  # type: ignore[no-any-return]


def _cpu_s() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def monitor_main(url: str, profile: str | None) -> None:
    from fleet_ops.fleet.monitor import FleetMonitor

    lags: list[float] = []
    seen: set[tuple[str, int]] = set()
    dups = [0]

    def counted(device_id: str, data: dict[str, Any]) -> None:
        lags.append(time.time() - float(data.get("sent", 0)))
        key = (device_id, int(data.get("seq", -1)))
        if key in seen:
            dups[0] += 1
        seen.add(key)

    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
    mon = FleetMonitor(url, fleet="scale", record_alerts=False)
    mon.on_counted = counted
    if not mon.subscribed.wait(10):
        print("not subscribed", flush=True)
        return
    print("ready", flush=True)
    sys.stdin.readline()  # "start"
    if prof is not None:  # cProfile sees one thread: enable it in paho's network thread
        inner = mon.client.on_message
        started = threading.Event()

        def on_message(*args: Any) -> None:
            if not started.is_set():
                started.set()
                prof.enable()
            inner(*args)

        mon.client.on_message = on_message
    cpu0, t0 = _cpu_s(), time.monotonic()
    expected = int(sys.stdin.readline())
    deadline = time.monotonic() + 15
    while len(lags) < expected and time.monotonic() < deadline:
        time.sleep(0.05)
    cpu, wall = _cpu_s() - cpu0, time.monotonic() - t0
    mon.close()  # joins the network thread: its profile is complete
    ordered = sorted(lags)
    if prof is not None:
        import io
        import pstats

        text = io.StringIO()
        pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(18)
        Path(profile or "fleet.prof.txt").write_text(text.getvalue())

    def pct(p: float) -> float | None:
        return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 2) \
            if ordered else None

    out = {"counted": len(lags), "unique": len(seen), "duplicates": dups[0],
           "lag_ms_p50": pct(0.5), "lag_ms_p95": pct(0.95), "lag_ms_max": pct(1.0),
           "cpu_s": round(cpu, 3), "wall_s": round(wall, 2),
           "cpu_share": round(cpu / wall, 4) if wall else None,
           "devices": len(mon.devices)}
    print(json.dumps(out), flush=True)


def run_scale(url: str, host: str, port: int, n: int, duration_s: float,
              profile: str | None = None) -> dict[str, Any]:
    """One run; ``profile``: write the fleet view's cProfile top functions to this file."""
    child = MonitorChild(url, profile)
    child.start()
    pub = simulate(host, port, n, duration_s)
    got = child.finish(pub["acked"])
    return {**pub, **got, "lost": pub["acked"] - got["unique"]}


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "monitor":
        monitor_main(sys.argv[2], sys.argv[4] if len(sys.argv) > 4 else None)
