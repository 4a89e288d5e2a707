"""``tinyops bridge`` serving our firmware in QEMU takes an update and a rollback over MQTT.

The QEMU board reports no device id and has no USB serial, so the model it runs is what
tells it from another board: the bridge's own update must not look like a board swap (the
virtual board, which has a device id, never showed that)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rollout"))

from test_update_bridge import bridge, results_of, running_sha
from update_fixtures import BUNDLED_MODEL, broker, sha, wait_for

from device_drivers.firmware import qemu
from device_drivers.flashing import Artifact, flash
from fleet_ops.rollout.transfer import MqttUpdater

OLD = BUNDLED_MODEL.read_bytes()


def _new_model() -> bytes:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "model_tools"))
    from tflite_edit import repack

    return repack(OLD, lambda m: setattr(m, "description", b"rollout v2"))


def test_bridge_updates_and_rolls_back_our_firmware(fw_build: Any, tmp_path: Path) -> None:
    new = _new_model()
    built = fw_build("cortex-m4", "cmsis-nn", "runtime")
    with broker() as mq, qemu.start(built.elf, "mps2-an386", tmp_path / "fw") as board:
        flash(Artifact.from_bytes(OLD, "old.tflite"), board.port)
        updater = MqttUpdater(mq.url, "qfw")
        got = results_of(updater)
        try:
            with bridge(board.port, mq.url, "qfw", "qemu-m4") as proc:
                wait_for(lambda: updater.devices().get("qemu-m4", {}).get("model_sha256")
                         == sha(OLD) or proc.poll() is not None, 60, "the bridge's status")
                updater.offer("qemu-m4", "r1", new, sha(new), "install", "new.tflite")
                wait_for(lambda: "qemu-m4" in got or proc.poll() is not None, 120,
                         "the bridge's result")
                assert proc.poll() is None, "the bridge ended after its own update"
                assert got.pop("qemu-m4").confirmed
                assert updater.bytes_sent("qemu-m4") <= 1.05 * len(new)
                updater.offer("qemu-m4", "r1", b"", sha(OLD), "rollback", "old.tflite")
                wait_for(lambda: "qemu-m4" in got or proc.poll() is not None, 60,
                         "the rollback's result")
                assert proc.poll() is None, "the bridge ended after the rollback"
                assert got["qemu-m4"].confirmed, got["qemu-m4"]
        finally:
            updater.close()
        assert running_sha(board.port) == sha(OLD)
