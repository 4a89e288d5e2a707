"""``tinyops bridge`` (a real subprocess) takes a model update over MQTT for the board it
serves and flashes it over SMP through ``device_drivers.flashing.flash`` (device-verified,
recorded); killed mid-flash, or the board losing its link mid-upload, the board keeps
running its previous model. The board is a ``VirtualBoard`` on a TCP port."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from update_fixtures import BUNDLED_MODEL, ROOT, broker, sha, wait_for

from device_drivers.link import DeviceSession
from device_drivers.virtual.board import VirtualBoard
from device_drivers.virtual.faults import FaultConfig
from fleet_ops.records import RecordStore
from fleet_ops.rollout.transfer import MqttUpdater, UpdateResult

OLD = BUNDLED_MODEL.read_bytes()
NEW = OLD + bytes(16)


@contextmanager
def bridge(port: str, url: str, fleet: str, device_id: str
           ) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "bridge", "--port", port, "--mqtt", url,
         "--fleet", fleet, "--device-id", device_id, "--json"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ))
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        try:
            out, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        proc.output = (out, err)  # type: ignore[attr-defined]


def results_of(updater: MqttUpdater) -> dict[str, UpdateResult]:
    got: dict[str, UpdateResult] = {}
    updater.on_result(lambda r: got.__setitem__(r.device_id, r) if r.matches_offer else None)
    return got


def running_sha(port: str) -> str:
    with DeviceSession.open(port, timeout_s=5.0) as s:
        info = s.model_info()
        assert info is not None and info.loaded
        return bytes(info.sha256).hex()


def test_bridge_flashes_the_offered_model_and_rolls_back(tmp_path: Path) -> None:
    with broker() as mq, VirtualBoard(state_dir=tmp_path / "vb", tcp_port=0) as board:
        updater = MqttUpdater(mq.url, "fbr")
        got = results_of(updater)
        try:
            with bridge(board.port, mq.url, "fbr", "station-1") as proc:
                wait_for(lambda: updater.devices().get("station-1", {}).get("model_sha256")
                         == sha(OLD) or proc.poll() is not None, 60, "the bridge's status")
                assert proc.poll() is None
                assert updater.devices()["station-1"]["arena_max"] == board.limits.arena_size
                updater.offer("station-1", "r1", NEW, sha(NEW), "install", "new.tflite")
                wait_for(lambda: "station-1" in got, 90, "the bridge's result")
                r = got.pop("station-1")
                assert r.confirmed, r
                assert board.loaded_model_sha256 == sha(NEW)
                wait_for(lambda: updater.devices()["station-1"].get("model_sha256") == sha(NEW),
                         20, "the status naming the new model")
                assert updater.bytes_sent("station-1") <= 1.05 * len(NEW)
            out, err = proc.output  # type: ignore[attr-defined]
            assert json.loads(out.strip().splitlines()[-1])["ok"] is True, err
            flashes = RecordStore().list(10, operation="flash")  # this test's TINYOPS_HOME
            assert any(f.artifact_sha256 == sha(NEW) and f.result == "ok" for f in flashes)

            # another bridge process (nobody remembers the previous model): it finds it
            with bridge(board.port, mq.url, "fbr", "station-1") as proc:
                wait_for(lambda: proc.poll() is not None or updater.devices().get(
                    "station-1", {}).get("state") == "online", 60, "the new bridge")
                # it found the held model on the board (the board's own hash)
                assert updater.devices()["station-1"]["previous_sha256"] == sha(OLD)
                updater.offer("station-1", "r1", b"", sha(OLD), "rollback", "old")
                wait_for(lambda: "station-1" in got, 60, "the rollback result")
                assert got["station-1"].confirmed, got["station-1"]
                assert board.loaded_model_sha256 == sha(OLD)
        finally:
            updater.close()
        assert running_sha(board.port) == sha(OLD)


def test_bridge_killed_mid_flash_leaves_the_previous_model_running(tmp_path: Path) -> None:
    slow = FaultConfig(baud=19200)  # ~1.9 kB/s: the upload takes several seconds
    with broker() as mq, VirtualBoard(state_dir=tmp_path / "vb", tcp_port=0,
                                      faults=slow) as board:
        updater = MqttUpdater(mq.url, "fkill")
        try:
            with bridge(board.port, mq.url, "fkill", "station-2") as proc:
                wait_for(lambda: "station-2" in updater.devices(), 60, "the bridge's status")
                rx0 = board.bytes_rx
                updater.offer("station-2", "r1", NEW, sha(NEW), "install", "new.tflite")
                wait_for(lambda: board.bytes_rx > rx0 + 4000, 60, "the upload under way")
                proc.kill()
                proc.wait(10)
            assert board.loaded_model_sha256 == sha(OLD)
            assert running_sha(board.port) == sha(OLD)
        finally:
            updater.close()


def test_board_losing_its_link_mid_upload_reports_failed_and_keeps_its_model(
        tmp_path: Path) -> None:
    cut = FaultConfig(disconnect_after=6000)  # the link drops once 6 kB came in
    with broker() as mq, VirtualBoard(state_dir=tmp_path / "vb", tcp_port=0,
                                      faults=cut) as board:
        updater = MqttUpdater(mq.url, "fcut")
        got = results_of(updater)
        try:
            with bridge(board.port, mq.url, "fcut", "station-3"):
                wait_for(lambda: "station-3" in updater.devices(), 60, "the bridge's status")
                updater.offer("station-3", "r1", NEW, sha(NEW), "install", "new.tflite")
                wait_for(lambda: "station-3" in got, 90, "the failed result")
            r = got["station-3"]
            assert r.outcome == "failed" and "flash failed" in r.reason, r
            assert board.loaded_model_sha256 == sha(OLD)
        finally:
            updater.close()
