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


def test_ctrl_c_leaves_it_resumable_and_retry_lets_a_failed_device_go_again(
        rollout_broker: Any, capsys: pytest.CaptureFixture[str]) -> None:
    """Ctrl-C (SIGINT) in ``create``: exit 130 naming ``tinyops rollout resume ID``. A device
    that failed twice stays FAILED; ``retry --device`` (a person) lets the next resume send
    it once more (attempt 3)."""
    swarm = Swarm(rollout_broker.url, "intr", 3, model=OLD_MODEL, rate_hz=4, ops=OPS)
    swarm.device(1).target.refuse = lambda _data: "no room"
    swarm.start()
    store = RolloutStore.open("")
    try:
        child = _child("create", str(MODEL), "--fleet", "intr", "--mqtt", rollout_broker.url,
                       "--devices", "sim-00000,sim-00001,sim-00002", "--steps", "100",
                       "--health-window", "600", "--halt-on", "silent>0", "--stall", "3")
        wait_until(lambda: store.list() and store.counts(store.list()[0].id)[
            DeviceStep.FAILED] == 1, 40, "the refusing device failed twice")
        rid = store.list()[0].id
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
        assert child.returncode == 130, err[-2000:]
        assert f"tinyops rollout resume {rid}" in err
        assert store.get(rid).state == RolloutState.RUNNING
        swarm.device(1).target.refuse = None  # a person fixed the device
        code, said, _ = _cli(capsys, "retry", rid, "--device", "sim-00001", "--json")
        assert code == 0 and said["device"] == "sim-00001"
        store.db.run(lambda q: q("UPDATE rollouts SET plan = replace(plan, "
                                 "'\"health_window_s\": 600.0', '\"health_window_s\": 1.0')"))
        again = _child("resume", rid, "--stall", "3", "--json")
        out, err = again.communicate(timeout=60)
        assert again.returncode == 0, err[-2000:]
        assert json.loads(out.strip().splitlines()[-1])["counts"] == {"healthy": 3}
        assert [d.target.installs for d in swarm.devices] == [1, 1, 1]
        entry = next(e for e in store.devices(rid) if e.device_id == "sim-00001")
        assert entry.attempts == 3  # two failed, then the one a person allowed
    finally:
        swarm.stop()
        store.close()
