"""On-target validation against the virtual board, with the host reference computed by
model_tools' TFLM run (the same glue the CLI uses); and a board that answers wrong."""

from __future__ import annotations

import hashlib
import threading

import numpy as np
import pytest

from device_drivers import paths
from device_drivers.errors import Cancelled, DeviceError, InputError
from device_drivers.link.session import DeviceSession
from device_drivers.protocol import runtime as rt
from device_drivers.validate import quantize, run_validation, validate
from device_drivers.virtual import VirtualBoard
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_validation

EXAMPLE = paths.resources_dir() / "examples" / "vibration"
MODEL = (EXAMPLE / "model_int8.tflite").read_bytes()
MODEL_SHA = hashlib.sha256(MODEL).hexdigest()
DATA = np.load(EXAMPLE / "eval.npz")
N = 40


def host_reference(raw: np.ndarray) -> np.ndarray:
    from model_tools.tflm import run_model

    return run_model(MODEL, raw)[0]


class WrongOutputBoard(VirtualBoard):
    """A board whose runtime corrupts the output of every 7th inference by one LSB."""

    def _build_dispatcher(self):  # type: ignore[no-untyped-def]
        d = super()._build_dispatcher()
        key = (rt.GROUP_ID, int(rt.InferWriteRequest._OP), int(rt.Command.INFER))
        route = d.routes[key]
        original = route.handler
        count = {"n": 0}

        def perturbed(request):  # type: ignore[no-untyped-def]
            reply = original(request)
            count["n"] += 1
            if count["n"] % 7:
                return reply
            out = bytearray(reply.output)
            out[0] = (out[0] + 1) & 0xFF
            return rt.InferWriteResponse(output=bytes(out), latency_us=reply.latency_us)

        route.handler = perturbed
        return d


@pytest.fixture(scope="module")
def board():
    """One healthy board for the tests that do not change it."""
    with VirtualBoard(board="virtual") as vb:
        yield vb


@pytest.fixture(scope="module")
def reference(board: VirtualBoard) -> np.ndarray:
    with DeviceSession.open(board.port) as dev:
        spec = dev.model_info().inputs[0]
    return host_reference(quantize(DATA["x"][:N].reshape(N, *spec.shape[1:]), spec))


def test_board_matches_the_host_bit_for_bit(board: VirtualBoard, reference: np.ndarray) -> None:
    seen: list[float] = []
    result = run_validation(board.port, DATA["x"][:N], host_reference, artifact="m.tflite",
                            model_sha256=MODEL_SHA, artifact_size=len(MODEL),
                            labels=DATA["y"][:N], progress=lambda f, m: seen.append(f),
                            recorder=record_validation)
    assert result.samples == N and result.bit_exact and result.mismatches == 0
    assert result.max_abs_diff == 0.0 and result.agreement == 1.0
    host_acc = float(np.mean(reference.argmax(axis=1) == DATA["y"][:N]))
    assert result.accuracy_host == pytest.approx(host_acc)
    assert result.accuracy_device == pytest.approx(host_acc)
    assert 0 < result.latency_us_median <= result.latency_us_p95 <= result.latency_us_max
    assert seen[-1] == 1.0 and len(seen) == N
    rec = open_store().list()[0]
    assert (rec.operation, rec.result, rec.verify) == ("validate", "ok", f"bit-exact {N}/{N}")
    assert rec.details["latency_us_p95"] == result.latency_us_p95


def test_a_board_that_returns_wrong_outputs_is_caught(reference: np.ndarray) -> None:
    with WrongOutputBoard(board="virtual") as vb:
        result = run_validation(vb.port, DATA["x"][:N], reference, artifact="m.tflite",
                                model_sha256=MODEL_SHA, labels=DATA["y"][:N],
                            recorder=record_validation)
    assert not result.ok
    assert result.mismatch_indices == [i for i in range(N) if (i + 1) % 7 == 0]
    assert result.mismatches == N // 7
    assert result.max_abs_diff == 1.0
    rec = open_store().list()[0]
    assert rec.result == "failed" and rec.verify.startswith(f"{N // 7}/{N} samples differ")


def test_another_model_on_the_board_is_refused(board: VirtualBoard) -> None:
    with pytest.raises(DeviceError, match="runs model"):
        run_validation(board.port, DATA["x"][:4], np.zeros((4, 3)), artifact="other.tflite",
                       model_sha256="00" * 32, recorder=record_validation)
    rec = open_store().list()[0]
    assert (rec.operation, rec.result, rec.verify) == ("validate", "failed", "not run")


def test_bad_samples_and_references_are_input_errors(board: VirtualBoard) -> None:
    with DeviceSession.open(board.port) as dev:
        with pytest.raises(InputError, match="do not fit"):
            validate(dev, np.zeros((3, 10), np.float32), np.zeros((3, 3)))
        with pytest.raises(InputError, match="host reference"):
            validate(dev, DATA["x"][:3], np.zeros((2, 3)))
        with pytest.raises(InputError, match="labels"):
            validate(dev, DATA["x"][:3], host_reference, labels=np.zeros(5))


def test_cancel_between_samples(board: VirtualBoard) -> None:
    cancel = threading.Event()

    def progress(fraction: float, message: str) -> None:
        if fraction >= 0.25:
            cancel.set()

    with DeviceSession.open(board.port) as dev, pytest.raises(Cancelled):
        validate(dev, DATA["x"][:20], np.zeros((20, 3), np.int8), progress=progress,
                 cancel=cancel)


def test_quantize_rounds_and_clips_like_firmware() -> None:
    spec = rt.TensorSpec(dtype="int8", shape=[1, 4], scale=0.5, zero_point=-3)
    x = np.array([[0.0, 0.74, 1000.0, -1000.0]], np.float32)
    assert quantize(x, spec).tolist() == [[-3, -2, 127, -128]]


def test_a_failing_host_reference_still_writes_the_record(board: VirtualBoard) -> None:
    from model_tools.errors import ModelToolsError
    from model_tools.tflm import run_model

    def broken_reference(raw: np.ndarray) -> np.ndarray:  # the model's input is 128x3
        return run_model(MODEL, raw.reshape(len(raw), -1)[:, :5])[0]

    with pytest.raises(ModelToolsError, match="could not run the model") as err:
        run_validation(board.port, DATA["x"][:4], broken_reference, artifact="m.tflite",
                       model_sha256=MODEL_SHA, artifact_size=len(MODEL),
                            recorder=record_validation)
    recs = open_store().list(operation="validate")
    assert len(recs) == 1
    assert (recs[0].result, recs[0].verify) == ("failed", "not run")
    assert recs[0].error == err.value.message and recs[0].artifact_sha256 == MODEL_SHA


def test_failure_outcome_follows_the_class_not_its_name() -> None:
    from device_drivers.validate import failure_of
    from model_tools.errors import Cancelled as ModelCancelled

    class Cancelled(Exception):  # a stranger's class of the same name: not a cancel
        pass

    assert failure_of(ModelCancelled("host run stopped")) == ("cancelled", "host run stopped")
    assert failure_of(KeyboardInterrupt())[0] == "cancelled"
    assert failure_of(Cancelled("boom")) == ("failed", "Cancelled: boom")
    assert failure_of(DeviceError("board gone", "replug")) == ("failed", "board gone")


def test_an_input_larger_than_one_request_is_a_clear_error(reference: np.ndarray) -> None:
    """A board whose SMP buffer (zephyr-default: 384 B) cannot carry the example's 384 B
    input plus its header: one line saying so before any request, not a ValueError from
    the transport."""
    with (VirtualBoard(board="virtual", profile="zephyr-default") as vb,
          DeviceSession.open(vb.port) as dev,
          pytest.raises(InputError, match=r"one input of this model is 384 B.*at most")):
        validate(dev, DATA["x"][:2], reference[:2])
