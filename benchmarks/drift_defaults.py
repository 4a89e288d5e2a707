"""How the drift defaults were set: replay recorded fleet telemetry through ``DriftWindow``.

Record (``--record FILE --seconds 780``) every telemetry message of the virtual boards on a
broker, e.g. three steady boards and one drifting one::

    tinyops sim --mqtt URL --device-id steady1 --condition-mix 1,1,1 --seed 1   # x3
    tinyops sim --mqtt URL --device-id drift1 --drift --seed 9

then analyse (``--analyse FILE``): for windows 100..400 and thresholds 0.15..0.30, the alerts
on the steady boards (false alarms) and the delay from a drift onset (steady1's first 300 s
followed by drift1's messages) to the first alert. Run as
``uv run python -m benchmarks.drift_defaults --record rec.jsonl --url mqtt://127.0.0.1:1883``.
"""

from __future__ import annotations

import argparse
import collections
import json
import time
from pathlib import Path
from typing import Any

from device_drivers import paths
from fleet_ops.fleet.drift import DriftWindow

CARD = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite.card.json"


def record(url: str, out: Path, seconds: float, fleet: str = "default") -> None:
    import paho.mqtt.client as paho

    from fleet_ops.fleet.mqtt import parse_url

    broker = parse_url(url)
    with out.open("a") as f:
        def on_msg(_c: Any, _u: Any, m: Any) -> None:
            parts = m.topic.split("/")
            f.write(json.dumps({"t": time.time(), "dev": parts[2], "kind": parts[3],
                                "p": m.payload.decode(errors="replace")}) + "\n")

        c = paho.Client(paho.CallbackAPIVersion.VERSION2)
        c.on_message = on_msg
        c.connect(broker.host, broker.port)
        c.subscribe([(f"tinyops/{fleet}/+/telemetry", 1), (f"tinyops/{fleet}/+/status", 1)])
        c.loop_start()
        time.sleep(seconds)
        c.loop_stop()


def _run(base: dict[str, Any], msgs: list[tuple[float, dict[str, float]]], size: int,
         thr: float) -> tuple[list[float], float]:
    w = DriftWindow(base, size=size)
    alerts: list[float] = []
    above, worst = False, 0.0
    for t, scores in msgs:
        w.add(scores)
        s = w.score()
        if not s:
            continue
        worst = max(worst, s["score"])
        if s["score"] > thr and not above:
            alerts.append(t)
        above = s["score"] > thr
    return alerts, worst


def analyse(path: Path, onset_s: float = 300.0) -> list[str]:
    base = json.loads(CARD.read_text())["drift_baseline"]
    msgs: dict[str, list[tuple[float, dict[str, float]]]] = collections.defaultdict(list)
    for line in path.open():
        r = json.loads(line)
        if r["kind"] == "telemetry":
            p = json.loads(r["p"])
            if "scores" in p:
                msgs[r["dev"]].append((r["t"], p["scores"]))
    steady = sorted(d for d in msgs if d.startswith("steady"))
    st, dr = msgs[steady[0]], msgs["drift1"]
    onset = [(t - st[0][0], s) for t, s in st if t - st[0][0] < onset_s] + [
        (onset_s + t - dr[0][0], s) for t, s in dr if t - dr[0][0] < 400]
    lines = []
    for size in (100, 200, 300, 400):
        for thr in (0.15, 0.2, 0.25, 0.3):
            results = [_run(base, msgs[d], size, thr) for d in steady]
            false = sum(len(a) for a, _ in results)
            worst = max(w for _, w in results)
            after = [t for t in _run(base, onset, size, thr)[0] if t >= onset_s]
            delay = f"{after[0] - onset_s:.1f} s" if after else "never"
            lines.append(f"window {size} threshold {thr:.2f}: {false} false alarms on "
                         f"{len(steady)} steady boards (worst score {worst:.3f}); "
                         f"drift flagged after {delay}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--record", type=Path)
    ap.add_argument("--url", default="mqtt://127.0.0.1:1883")
    ap.add_argument("--seconds", type=float, default=780)
    ap.add_argument("--analyse", type=Path)
    args = ap.parse_args()
    if args.record:
        record(args.url, args.record, args.seconds)
    if args.analyse:
        print("\n".join(analyse(args.analyse)))


if __name__ == "__main__":
    main()
