"""Rollouts at scale (issue 20): N simulated MQTT devices on one real Mosquitto.

    uv run python -m benchmarks.rollout_scale --devices 1000 [--window 10] [--json]
    uv run python -m benchmarks --only rollout_scale        # N = 1000 (--quick: 200)

The devices are ``fleet_ops.rollout.swarm.Swarm`` (one paho client and TCP connection each,
one selector thread) in a child process of their own (``… rollout_scale swarm …``), so the
orchestrator's CPU time is its own. The rollout is made as ``tinyops rollout create`` makes
it (``create_rollout``: model verified, steps fixed, stored in a temporary SQLite file) and
the orchestrator runs as ``tinyops rollout`` runs it, in a child process of its own
(``… rollout_scale orchestrate …``: ``MqttUpdater``, ``FleetMonitor`` with the model card's
baseline, ``Orchestrator.run``).

Two runs:

- **clean**: every device takes the model: time from ``create`` to 100 % (the floor is
  4 steps × the health window), and the bytes the orchestrator sent each device against the
  model's size (the store's ``bytes_sent``; target ≤ 1.05×);
- **breach**: every device drifts once it runs the new model (``drift>0.2``): the canary
  step must halt the rollout; time from the breach (the last canary device installed + the
  health window, when the gate can first see it) to the ``halted`` decision, and until the
  last update message any device received (every device halted: nothing more is sent), and
  how many devices beyond the canary took the model (must be 0).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from benchmarks.common import EXAMPLE_DIR, ROOT, Figure

MODEL = EXAMPLE_DIR / "model_int8.tflite"
FLEET = "scale"  # each run its own fleet, "scale-<run>": no retained message of one run
# (statuses, offers, results) is seen by the next on the same broker
STEPS = "5,25,50,100"


def _raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def _broker() -> Any:
    """A Mosquitto of its own (the tests' way; ``tests/`` on the path for its helpers)."""
    for sub in ("tests", "tests/fleet"):
        if str(ROOT / sub) not in sys.path:
            sys.path.insert(0, str(ROOT / sub))
    from fleet_servers import Mosquitto, mosquitto_binary

    binary = mosquitto_binary()
    if binary is None:
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    broker = Mosquitto(binary, "max_queued_messages 10000\n")
    broker.start()
    return broker


# ---- the swarm child -----------------------------------------------------------------
RATE_HZ = 6.0
"""Telemetry per device and second: the drift score needs 50 results (``MIN_SAMPLES``) inside
the 10 s health window."""


def swarm_main(url: str, n: int, behaviour: str, fleet: str) -> None:
    """Run ``n`` devices (old model: the example model's bytes reversed) until "stop";
    "report" prints each device's model and the update messages it received."""
    from fleet_ops.rollout.preflight import model_facts
    from fleet_ops.rollout.swarm import Swarm, default_ops

    _raise_fd_limit()
    old = bytes(reversed(MODEL.read_bytes()))
    ops = sorted(set(default_ops()) | model_facts(MODEL).ops)  # the runtime has the model's ops
    swarm = Swarm(url, fleet, n, model=old, rate_hz=RATE_HZ, ops=ops,
                  behaviours=dict.fromkeys(range(n), behaviour))
    seen: dict[str, list[float]] = {d.device_id: [0.0, 0, 0] for d in swarm.devices}
    for dev in swarm.devices:
        handle = dev.agent.handle

        def counted(topic: str, payload: bytes, _h: Any = handle,
                    _s: list[float] = seen[dev.device_id]) -> None:
            if "/update/" in topic and payload:
                _s[0] = time.time()
                _s[1] += 1
                if topic.endswith("/update/chunk"):
                    _s[2] += len(payload)
            _h(topic, payload)

        dev.agent.handle = counted  # type: ignore[method-assign]
    t0 = time.monotonic()
    swarm.start(timeout=120)
    print(json.dumps({"ready": round(time.monotonic() - t0, 2)}), flush=True)
    for line in sys.stdin:
        if line.strip() == "report":
            report = {d.device_id: {"sha256": d.model_sha256, "updated": d.updated,
                                    "last_update_msg": seen[d.device_id][0],
                                    "update_msgs": seen[d.device_id][1],
                                    "chunk_bytes": seen[d.device_id][2]}
                      for d in swarm.devices}
            print(json.dumps(report), flush=True)
        elif line.strip() == "stop":
            break
    swarm.stop()


class SwarmChild:
    def __init__(self, url: str, n: int, behaviour: str, env: dict[str, str], fleet: str
                 ) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.rollout_scale", "swarm", url, str(n), behaviour,
             fleet],
            cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("{"):
            self.proc.kill()
            raise RuntimeError(f"the swarm did not start: {line!r}")
        self.connect_s = json.loads(line)["ready"]

    def report(self) -> dict[str, dict[str, Any]]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("report\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.communicate("stop\n", timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


# ---- the transfer alone ---------------------------------------------------------------
def transfer_once(url: str, n: int, timeout_s: float = 600) -> dict[str, Any]:
    """Offer the model to all ``n`` devices at once (``MqttUpdater``, no orchestrator, no
    gates): time until every device confirmed it, bytes sent per device / the model's size."""
    import hashlib

    from fleet_ops.rollout.transfer import MqttUpdater

    data = MODEL.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    fleet = f"{FLEET}-transfer"
    swarm = SwarmChild(url, n, "ok", dict(os.environ), fleet)
    updater = MqttUpdater(url, fleet)
    done: dict[str, float] = {}
    all_done = threading.Event()

    def result(res: Any) -> None:
        if res.rollout == "bench" and res.confirmed and res.device_id not in done:
            done[res.device_id] = time.time()
            if len(done) == n:
                all_done.set()

    updater.on_result(result)
    try:
        if not updater.subscribed.wait(30):
            raise RuntimeError("the updater did not subscribe")
        ids = [f"sim-{i:05d}" for i in range(n)]
        t0 = time.time()
        for d in ids:
            updater.offer(d, "bench", data, sha, name=MODEL.name)
        all_done.wait(timeout_s)
        wall = time.time() - t0
        traffic = updater.traffic()
        for d in done:
            updater.cancel(d)
        report = swarm.report()
    finally:
        updater.close()
        swarm.stop()
    ratios = [traffic[d].bytes_sent / len(data) for d in ids if d in traffic]
    times = sorted(t - t0 for t in done.values())
    return {"devices": n, "confirmed": len(done), "all_s": round(wall, 2),
            "p50_s": round(times[len(times) // 2], 2) if times else None,
            "bytes_ratio_max": round(max(ratios), 4) if ratios else None,
            "bytes_ratio_mean": round(sum(ratios) / len(ratios), 4) if ratios else None,
            "resent_bytes": sum(t.resent_bytes for t in traffic.values()),
            "updated_on_devices": sum(1 for v in report.values() if v["updated"]),
            "model_bytes": len(data), "swarm_connect_s": swarm.connect_s}


# ---- one rollout ---------------------------------------------------------------------
def _ts(iso: str) -> float:
    return datetime.fromisoformat(iso).timestamp()


def orchestrate_main(url: str, rollout_id: str, db: str, fleet: str) -> None:
    """The orchestrator as ``tinyops rollout`` runs it (its own updater and fleet view)."""
    from fleet_ops.fleet.monitor import FleetMonitor
    from fleet_ops.rollout.orchestrator import Orchestrator
    from fleet_ops.rollout.preflight import model_facts
    from fleet_ops.rollout.store import RolloutStore
    from fleet_ops.rollout.transfer import MqttUpdater

    facts = model_facts(MODEL)
    store = RolloutStore.open("", path=db)
    updater = MqttUpdater(url, fleet)
    monitor = FleetMonitor(url, fleet=fleet, record_alerts=False,
                           baselines={facts.sha256: facts.baseline or {}})
    try:
        r = Orchestrator(store, updater, monitor).run(rollout_id)
        print(json.dumps({"state": r.state.value, "halt_reason": r.halt_reason}), flush=True)
    finally:
        updater.close()
        monitor.close()
        store.close()


def rollout_once(url: str, n: int, window_s: float, behaviour: str, rules: str,
                 timeout_s: float) -> dict[str, Any]:
    """One rollout to ``n`` fresh devices; the figures of :func:`run` (see the docstring)."""
    from fleet_ops.rollout.create import create_rollout
    from fleet_ops.rollout.store import RolloutStore

    home = tempfile.mkdtemp(prefix="tinyops-rollout-bench-")
    env = {**os.environ, "TINYOPS_HOME": home, "TINYOPS_RECORDS_URL": ""}
    fleet = f"{FLEET}-{behaviour}"
    swarm = SwarmChild(url, n, behaviour, env, fleet)
    log = Path(home) / "orchestrator.log"
    store = RolloutStore.open("", path=Path(home) / "bench.db")
    try:
        t0 = time.time()
        r = create_rollout(store, MODEL, fleet=fleet, mqtt_url=url,
                           devices=[f"sim-{i:05d}" for i in range(n)], steps=STEPS,
                           health_window_s=window_s, rules=rules)
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "benchmarks.rollout_scale", "orchestrate", url, r.id,
                 str(Path(home) / "bench.db"), fleet],
                cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
            try:
                rc = proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
                rc = None
        wall = time.time() - t0
        r = store.get(r.id)
        entries = store.devices(r.id)
        events = store.events(r.id)
        report = swarm.report()
    finally:
        store.close()
        swarm.stop()
    tail = log.read_text(errors="replace").splitlines()[-5:]
    shutil.rmtree(home, ignore_errors=True)
    return _figures(r, entries, events, report, t0, wall, rc, window_s, swarm.connect_s, tail)


def _figures(r: Any, entries: list[Any], events: list[Any], report: dict[str, Any], t0: float,
             wall: float, rc: int | None, window_s: float, connect_s: float,
             tail: list[str]) -> dict[str, Any]:
    size = r.model_size
    ratios = [e.bytes_sent / size for e in entries if e.bytes_sent]
    by_kind: dict[str, list[Any]] = {}
    for e in events:
        by_kind.setdefault(e.kind, []).append(e)
    done = by_kind.get("completed", [])
    halted = by_kind.get("halted", [])
    step_of = {e.device_id: e.step_index for e in entries}
    canary = [e for e in by_kind.get("installed", []) if step_of.get(e.device_id) == 0]
    out: dict[str, Any] = {
        "devices": len(entries), "state": r.state.value,
        "device_states": {k: sum(1 for e in entries if e.state.value == k)
                          for k in sorted({e.state.value for e in entries})},
        "skip_reasons": sorted({e.reason for e in entries if e.reason})[:5],
        "exit": rc, "wall_s": round(wall, 1),
        "swarm_connect_s": connect_s, "model_bytes": size,
        "updated_on_devices": sum(1 for v in report.values() if v["updated"]),
        "bytes_ratio_max": round(max(ratios), 4) if ratios else None,
        "bytes_ratio_mean": round(sum(ratios) / len(ratios), 4) if ratios else None,
        "chunk_bytes_received_max_ratio": round(max(
            v["chunk_bytes"] for v in report.values()) / size, 4),
        "orchestrator_tail": tail,
    }
    if done:
        out["create_to_100_s"] = round(_ts(done[-1].time) - t0, 1)
        out["floor_s"] = window_s * len(r.steps)
    if halted:
        t_halt = _ts(halted[0].time)
        breach = (max(_ts(e.time) for e in canary) + window_s) if canary else None
        last_msg = max((v["last_update_msg"] for v in report.values()), default=0.0)
        out.update(
            halt_reason=r.halt_reason, canary_devices=sum(1 for s in step_of.values() if s == 0),
            breach_to_halted_s=round(t_halt - breach, 2) if breach else None,
            breach_to_quiet_s=round(max(t_halt, last_msg) - breach, 2) if breach else None,
            beyond_canary_updated=sum(1 for d, v in report.items()
                                      if v["updated"] and step_of.get(d) != 0))
    return out


def _attempt(job: Any) -> tuple[dict[str, Any], str]:
    try:
        return job(), ""
    except Exception as exc:  # one part failing must not hide the others
        return {}, f"failed: {type(exc).__name__}: {exc}"


def run(quick: bool, n: int | None = None, window_s: float = 10.0) -> list[Figure]:
    _raise_fd_limit()
    n = n or (200 if quick else 1000)
    broker = _broker()
    try:
        xfer, xerr = _attempt(lambda: transfer_once(broker.url, n))
        clean, cerr = _attempt(lambda: rollout_once(broker.url, n, window_s, "ok",
                                                    "drift>0.2,failed>2%", 600))
        breach, berr = _attempt(lambda: rollout_once(broker.url, n, window_s, "drift",
                                                     "drift>0.2", 300))
    finally:
        broker.stop()
    note = f"{n} swarm devices, one Mosquitto, steps {STEPS}, health window {window_s:g} s"
    return [
        Figure("rollout_transfer_all_s", xfer.get("all_s"), "s", op="",
               reference="the model offered to every device at once, until all confirmed",
               note=xerr or f"{n} devices, {xfer['confirmed']} confirmed, p50 {xfer['p50_s']} s,"
                            f" bytes/model max {xfer['bytes_ratio_max']}×, "
                            f"{xfer['resent_bytes']} B resent", extra=xfer),
        Figure("rollout_create_to_100_s", clean.get("create_to_100_s"), "s", op="",
               reference=f"floor: {clean.get('floor_s', 4 * window_s):g} s of health windows",
               note=cerr or f"{note}; {clean['updated_on_devices']} of {n} updated, state "
                            f"{clean['state']}", extra=clean),
        Figure("rollout_bytes_per_device_ratio", clean.get("bytes_ratio_max"), "×", 1.05, "<=",
               reference=f"the model's size (max over devices; mean "
                         f"{clean.get('bytes_ratio_mean')})", note=cerr or note),
        Figure("rollout_breach_to_halt_s", breach.get("breach_to_quiet_s"), "s", op="",
               reference="canary's last install + window → halted and no more update traffic",
               note=berr or f"{note}; halted: {breach.get('halt_reason')}; "
                            f"{breach.get('beyond_canary_updated')} devices beyond the canary "
                            "updated", extra=breach),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.rollout_scale",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=1000, help="simulated devices (1000)")
    parser.add_argument("--window", type=float, default=10.0, help="health window, s (10)")
    parser.add_argument("--json", action="store_true", help="one JSON line of every figure")
    parser.add_argument("--transfer-only", action="store_true",
                        help="only offer the model to every device at once (no orchestrator)")
    args = parser.parse_args(argv)
    if args.transfer_only:
        _raise_fd_limit()
        broker = _broker()
        try:
            print(json.dumps(transfer_once(broker.url, args.devices)))
        finally:
            broker.stop()
        return 0
    figures = run(False, args.devices, args.window)
    for f in figures:
        print(f"{f.key}: {f.value} {f.unit}  ({f.reference}; {f.note})")
    if args.json:
        print(json.dumps({f.key: {"value": f.value, "extra": f.extra} for f in figures},
                         default=str))
    return 0


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "orchestrate":
        orchestrate_main(*sys.argv[2:6])
    elif len(sys.argv) >= 6 and sys.argv[1] == "swarm":
        swarm_main(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        sys.exit(main())
