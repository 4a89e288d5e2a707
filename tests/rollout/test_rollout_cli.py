"""``tinyops rollout`` as a person uses it: create/status/list/pause/abort/retry, bad input,
a second orchestrator refused with the holder named, and an orchestrator killed (SIGKILL of
the ``tinyops rollout resume`` process) and restarted: it resumes, no device updated twice."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from rollout_harness import MODEL, OLD_MODEL, OPS, wait_until

from app.cli import main
from fleet_ops.rollout.plan import DeviceStep, RolloutState
from fleet_ops.rollout.store import RolloutStore
from fleet_ops.rollout.swarm import Swarm

ROOT = Path(__file__).resolve().parents[2]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, Any, str]:
    code = main(["rollout", *args])
    out, err = capsys.readouterr()
    try:
        return code, json.loads(out.strip().splitlines()[-1]), err
    except (ValueError, IndexError):
        return code, out, err


def _child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "app.cli", "rollout", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_plan_status_pause_abort_and_bad_input(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(capsys, "create", str(MODEL), "--fleet", "f", "--mqtt",
                        "mqtt://user:pw@127.0.0.1:1", "--devices", "a,b,c,d", "--steps",
                        "50", "--health-window", "5", "--halt-on", "drift>0.3,silent>0",
                        "--no-start", "--json")
    assert code == 0 and out["state"] == "created", out
    rid = out["id"]
    assert out["steps"] == [50, 100] and out["rules"] == ["drift>0.3", "silent>0"]
    assert out["counts"] == {"pending": 4} and "pw" not in out["mqtt_url"]
    code, out, _ = _cli(capsys, "list", "--json")
    assert [r["id"] for r in out["rollouts"]] == [rid]
    code, out, _ = _cli(capsys, "pause", rid[:12], "--json")
    assert code == 0 and out["holder"] is None
    code, out, _ = _cli(capsys, "status", rid, "--json")
    assert out["state"] == "paused" and out["events"][-1]["kind"] == "paused"
    code, out, _ = _cli(capsys, "retry", rid, "--device", "a", "--json")
    assert code == 2 and "not a FAILED device" in out["error"]
    code, out, _ = _cli(capsys, "abort", rid, "--json")
    assert code == 0
    code, out, _ = _cli(capsys, "abort", rid, "--json")
    assert code == 2 and "aborted: nothing to abort" in out["error"]
    for bad, said in ((["--halt-on", "speed>3"], "unknown metric"),
                      (["--steps", "50,10"], "steps must increase"),
                      (["--devices", "a/b"], "not a device id")):
        args = ["create", str(MODEL), "--fleet", "f", "--mqtt", "mqtt://127.0.0.1:1",
                "--devices", "a", "--no-start", "--json", *bad]
        code, out, _ = _cli(capsys, *args)
        assert code == 2 and said in out["error"], out
    code, out, _ = _cli(capsys, "create", str(ROOT / "pyproject.toml"), "--fleet", "f",
                        "--mqtt", "mqtt://127.0.0.1:1", "--devices", "a", "--json")
    assert code == 2 and "not a valid TFLite model" in out["error"]


def test_killed_orchestrator_resumes_without_updating_a_device_twice(
        rollout_broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    n = 20
    ids = ",".join(f"sim-{i:05d}" for i in range(n))
    swarm = Swarm(rollout_broker.url, "kill", n, model=OLD_MODEL, rate_hz=6, ops=OPS).start()
    store = RolloutStore.open("")
    try:
        code, out, _ = _cli(capsys, "create", str(MODEL), "--fleet", "kill", "--mqtt",
                            rollout_broker.url, "--devices", ids, "--steps", "10,50,100",
                            "--health-window", "2", "--halt-on", "failed>2%,silent>0",
                            "--no-start", "--json")
        assert code == 0, out
        rid = out["id"]
        first = _child("resume", rid, "--stall", "5")
        try:
            wait_until(lambda: store.holder(rid) is not None, 30, "the first to hold it")
            second = _child("resume", rid, "--json")  # a second orchestrator: refused
            out2, err2 = second.communicate(timeout=60)
            assert second.returncode == 1, (out2, err2)
            said = json.loads(out2.strip().splitlines()[-1])
            assert f"is held by {os.uname().nodename}:{first.pid}" in said["error"]
            took = lambda: sum(store.counts(rid)[s] for s in (DeviceStep.INSTALLED,  # noqa
                                                               DeviceStep.HEALTHY))
            wait_until(lambda: took() >= 3, 45, "a few devices updated")
        finally:
            first.send_signal(signal.SIGKILL)
            first.communicate(timeout=30)
        mid = store.counts(rid)
        assert 0 < mid[DeviceStep.INSTALLED] + mid[DeviceStep.HEALTHY] < n, mid
        assert store.get(rid).state == RolloutState.RUNNING
        t0 = time.monotonic()
        again = _child("resume", rid, "--stall", "5", "--json")
        out3, err3 = again.communicate(timeout=90)
        assert again.returncode == 0, (out3, err3[-2000:])
        result = json.loads(out3.strip().splitlines()[-1])
        assert result["state"] == "completed" and result["counts"] == {"healthy": n}
        assert time.monotonic() - t0 < 60
        assert [d.target.installs for d in swarm.devices] == [1] * n  # never twice
        kinds = [e.kind for e in store.events(rid)]
        assert kinds.count("installed") == n and "resumed" in kinds
    finally:
        swarm.stop()
        store.close()
