"""tflite-micro in child processes: build check, exact arena, crash containment."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
from tflite_edit import repack

from model_tools.analyze import static_arena_estimate
from model_tools.errors import InvalidModelError
from model_tools.tflm import TflmProcess, check_model, measure_arena, run_model, tflm_available
from model_tools.verify import verify_tflite

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")


@pytest.fixture(scope="module")
def arena(example_tflite: bytes):
    return measure_arena(example_tflite)


def _fresh_build(data: bytes, size: int):
    with TflmProcess(data) as proc:  # a new child process for each probe
        result = proc.build(size)
        return result, proc._proc.pid if proc._proc else None


def test_measured_minimum_works_and_16_bytes_less_fails(example_tflite: bytes, arena) -> None:
    assert arena.bytes % 16 == 0 and arena.largest_failing == arena.bytes - 16
    ok, pid = _fresh_build(example_tflite, arena.bytes)
    assert ok.ok, ok.error
    assert pid != os.getpid()
    too_small, _ = _fresh_build(example_tflite, arena.bytes - 16)
    assert not too_small.ok and (too_small.crashed or too_small.error)


def test_minimum_is_stable_across_processes(example_tflite: bytes, arena) -> None:
    again = measure_arena(example_tflite)
    assert again.bytes == arena.bytes


def test_static_estimate_is_in_the_right_range(example_tflite: bytes, arena) -> None:
    est = static_arena_estimate(verify_tflite(example_tflite).main)
    assert arena.bytes / 2 <= est <= arena.bytes * 2


def test_a_crashing_worker_is_contained_and_restarted(example_tflite: bytes) -> None:
    with TflmProcess(example_tflite) as proc:
        assert proc.build(64 * 1024).ok
        os.kill(proc._proc.pid, signal.SIGSEGV)  # what a too-small arena does to TFLM
        crashed = proc.build(64 * 1024)
        assert crashed.crashed and "SIGSEGV" in (crashed.error or "")
        assert proc.build(64 * 1024).ok  # a new worker took over


def test_the_child_verifies_before_tflm_sees_the_model(example_tflite: bytes) -> None:
    forged = example_tflite[:200]
    with pytest.raises(InvalidModelError), TflmProcess(forged) as proc:
        proc.build(4096)


def test_run_model_matches_an_in_process_interpreter(example_tflite: bytes, arena) -> None:
    from tflite_micro.python.tflite_micro import runtime

    rng = np.random.default_rng(3)
    x = rng.integers(-128, 128, size=(5, 128, 3), dtype=np.int8)
    ours = run_model(example_tflite, x, arena=arena.bytes)[0]
    interp = runtime.Interpreter.from_bytes(example_tflite, arena_size=64 * 1024)
    for i in range(len(x)):
        interp.set_input(x[i][None], 0)
        interp.invoke()
        assert np.array_equal(ours[i], interp.get_output(0)[0])


def test_unsupported_operator_is_named(tf) -> None:
    fn = tf.function(lambda x: tf.math.atan2(x, x + 1.0))
    conv = tf.lite.TFLiteConverter.from_concrete_functions(
        [fn.get_concrete_function(tf.TensorSpec([1, 8], tf.float32))], fn)
    data = conv.convert()
    result = check_model(data)
    assert not result.ok and result.failing_op == "ATAN2"
    assert "ATAN2" in (result.error or "")
    assert "Didn't find op for builtin opcode 'ATAN2'" in result.log  # TFLM's own words




@pytest.mark.parametrize(("edit", "failing_op", "tflm_says"), [
    (lambda m: setattr(m.subgraphs[0].tensors[0], "shape", [1, 4096, 3]),
     "EXPAND_DIMS", "expand_dims.cc"),
    (lambda m: setattr(m.subgraphs[0].tensors[17], "shape", [1, 1, 1, 1]),
     "RESHAPE", "num_input_elements != num_output_elements"),
    (lambda m: setattr(m.subgraphs[0].operators[1], "inputs", [16, 16, 14]), None, None),
    (lambda m: setattr(m.subgraphs[0].tensors[16], "type", 0),
     "CONV_2D", "input->type != output->type"),
])
def test_well_formed_but_inconsistent_models_never_take_the_caller_down(
        example_tflite: bytes, edit, failing_op: str | None, tflm_says: str | None) -> None:
    forged = repack(example_tflite, edit)
    verify_tflite(forged)  # passes the host verifier: only the runtime can tell
    result = check_model(forged)
    assert not result.crashed
    if failing_op is None:  # TFLM accepts this one: it must build and run, and say nothing
        assert result.ok and result.error is None and result.failing_op is None
        return
    assert not result.ok and result.failing_op == failing_op
    assert f"operator {failing_op}" in (result.error or "")
    # TFLM's own message (its stderr, captured in the child) reaches the caller
    assert tflm_says in result.log and tflm_says in (result.error or "")
    assert f"Node {failing_op}" in result.log


@pytest.mark.soak
def test_mutated_models_in_tflm_never_crash_the_caller(example_tflite: bytes) -> None:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(example_tflite) - 1), st.integers(0, 7))
    def run(pos: int, bit: int) -> None:
        buf = bytearray(example_tflite)
        buf[pos] ^= 1 << bit
        try:
            verify_tflite(bytes(buf))
        except InvalidModelError:
            return
        result = check_model(bytes(buf))
        assert result.ok or result.crashed or result.error

    run()
