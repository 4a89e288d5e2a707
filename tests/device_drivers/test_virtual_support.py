"""Helpers for the virtual-board tests: a synchronous smpclient wrapper and test models.

The client is plain ``smpclient.SMPClient(SMPSerialTransport(), port)`` over the real
pty; for ``socket://`` ports a small transport subclass opens the URL with
``serial.serial_for_url`` (smpclient's own transport only opens device paths).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import serial
from smpclient import SMPClient
from smpclient.transport.serial import SMPSerialTransport

from device_drivers import paths

EXAMPLE_DIR = paths.resources_dir() / "examples" / "vibration"
EXAMPLE_MODEL = EXAMPLE_DIR / "model_int8.tflite"


class _UrlTransport(SMPSerialTransport):
    """smpclient's serial transport on a pyserial URL (``socket://host:port``)."""

    async def connect(self, address: str, timeout_s: float) -> None:
        self._reset_state()
        conn = serial.serial_for_url(address, timeout=0)
        conn.out_waiting = 0  # socket:// has no output queue to drain
        conn.read_all = lambda: conn.read(65536)  # its in_waiting says 1 byte at most
        self._conn = conn  # type: ignore[misc]


class Client:
    """A blocking facade over smpclient's asyncio API (one event loop per client)."""

    def __init__(self, port: str, timeout_s: float = 3.0) -> None:
        self.loop = asyncio.new_event_loop()
        self.transport = _UrlTransport() if "://" in port else SMPSerialTransport()
        self.smp = SMPClient(self.transport, port, timeout_s=timeout_s)
        self.run(self.smp.connect())

    def run(self, coro: Any) -> Any:
        return self.loop.run_until_complete(coro)

    def request(self, req: Any, timeout_s: float | None = None) -> Any:
        return self.run(self.smp.request(req, timeout_s))

    def raw(self, frame: bytes, timeout_s: float = 3.0) -> bytes:
        """Send a hand-built SMP message, return the reply message."""
        return self.run(asyncio.wait_for(self.transport.send_and_receive(frame), timeout_s))

    def upload_file(self, data: bytes, name: str) -> list[int]:
        async def go() -> list[int]:
            return [off async for off in self.smp.upload_file(data, name)]
        return self.run(go())

    def upload_image(self, data: bytes) -> list[int]:
        async def go() -> list[int]:
            return [off async for off in self.smp.upload(data)]
        return self.run(go())

    def download_file(self, name: str) -> bytes:
        return self.run(self.smp.download_file(name))

    def serial_text(self, seconds: float) -> str:
        """Non-SMP text that arrives within ``seconds``."""
        out = bytearray()
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            out += self.run(self.transport.read_serial())
            time.sleep(0.02)
        return out.decode("utf-8", "replace")

    def telemetry(self, seconds: float) -> list[dict[str, Any]]:
        lines = []
        for line in self.serial_text(seconds).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):  # the first line may be cut
                    lines.append(json.loads(line))
        return lines

    def close(self) -> None:
        if self.loop.is_closed():
            return
        try:
            self.run(self.smp.disconnect())
        finally:
            self.loop.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def sha(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@cache
def example_model() -> bytes:
    """The bundled int8 vibration classifier, or a tiny int8 one converted with TF."""
    if EXAMPLE_MODEL.is_file():
        return EXAMPLE_MODEL.read_bytes()
    return _tiny_int8_model()  # pragma: no cover - only before the example exists


@cache
def sine_model() -> bytes:
    """A second, different valid model: the float sine example tflite-micro ships."""
    return tflm_sine_model()


def tflm_sine_model() -> bytes:
    """The file from tflite-micro's installed distribution, found without importing it (so
    also where ``TINYOPS_BLOCK_TFLM=1`` makes the package unimportable)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("tflite-micro")
    except metadata.PackageNotFoundError:
        pytest.skip("tflite-micro is not installed")
    path = Path(str(dist.locate_file("tflite_micro/python/tflite_micro/sine_float.tflite")))
    return path.read_bytes()


def _tiny_int8_model() -> bytes:  # pragma: no cover - fallback
    import keras
    import numpy as np
    import tensorflow as tf

    from device_drivers.virtual.signal import VibrationSource

    x, y = VibrationSource(1).dataset(30)
    model = keras.Sequential([keras.Input((128, 3)), keras.layers.Flatten(),
                              keras.layers.Dense(16, activation="relu"),
                              keras.layers.Dense(3, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x, y, epochs=5, verbose=0)
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([x[i:i + 1].astype(np.float32)] for i in range(50))
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    return conv.convert()


def wait_for(predicate: Any, timeout_s: float = 5.0, step: float = 0.02) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())
