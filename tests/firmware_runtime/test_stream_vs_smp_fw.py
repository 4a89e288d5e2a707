"""SMP wins over the telemetry stream on the real firmware: DS-CNN on the Cortex-M3 reference
build (~0.6 s per inference in QEMU) streaming, as after any load, while the host reads
model-info and uploads a file in 4 KB frames: every answer comes within about one
inference (before, the loop read 64 UART bytes per stream inference and a 4 KB frame took
minutes: `validate` timed out and the next `flash` failed)."""

from __future__ import annotations

import hashlib
import os
import time

from test_corpus_fw import corpus_models  # noqa: F401  (the fixture)

from device_drivers.firmware import qemu
from device_drivers.link import DeviceSession


def test_smp_answers_within_one_inference_while_ds_cnn_streams(fw_build, corpus_models,  # noqa: F811
                                                                tmp_path):
    model = corpus_models["ds_cnn"].read_bytes()
    built = fw_build("cortex-m3", "reference", "runtime")
    with qemu.start(built.elf, "mps2-an385", tmp_path) as board, \
            DeviceSession.open(board.port, timeout_s=5.0) as dev:
        assert dev.upload_file(model, "/lfs/model.tflite").verified
        dev.load_model("/lfs/model.tflite", sha256=hashlib.sha256(model).digest())
        first = dev.stats().inferences
        deadline = time.monotonic() + 60
        while dev.stats().inferences < first + 2:  # the stream is running
            assert time.monotonic() < deadline, "the stream did not start after the load"
        infer_s = dev.stats().last_latency_us / 1e6
        waits = []
        for _ in range(3):
            t0 = time.monotonic()
            assert dev.model_info().loaded
            waits.append(time.monotonic() - t0)
        data = os.urandom(16_000)
        t0 = time.monotonic()
        assert dev.upload_file(data, "/lfs/other.bin").verified
        upload_s = time.monotonic() - t0
        during = dev.stats().inferences
        print(f"DS-CNN M3 inference {infer_s:.3f} s; model-info answered in "
              f"{[round(w, 3) for w in waits]} s; 16 KB upload {upload_s:.2f} s")
        assert max(waits) < 2 * infer_s + 1.0, waits
        # ~5 frames of 4 KB + status + sha256: each waits at most one inference
        assert upload_s < 8 * (infer_s + 0.5), upload_s
        assert during > first + 2  # the stream kept running meanwhile
