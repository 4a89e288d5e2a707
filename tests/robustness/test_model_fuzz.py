"""Fuzzing model loading and verification: damaged, forged and random files are refused with
the documented error, never any other exception, and never with unbounded memory.

``tests/model_tools/test_verify.py`` checks mutated models against TensorFlow's own verifier
(needs TF, 300 examples); this file is the high-volume side without TensorFlow: the same
kinds of damage plus forged offsets and lengths, through every entry point that reads a
model file (``verify_tflite``, ``load_model`` on a path, the flasher's ``Artifact`` sniffing,
the Keras safety scan of ``.keras`` zips). Example counts honour ``TINYOPS_FUZZ_EXAMPLES``
like the telemetry fuzz tests (``TINYOPS_FUZZ_EXAMPLES=100000`` for the robustness run).
"""

from __future__ import annotations

import io
import json
import os
import tracemalloc
import zipfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_drivers import paths
from device_drivers.errors import TinyOpsError
from device_drivers.flashing import Artifact
from model_tools.errors import InvalidModelError, ModelInputError
from model_tools.loading import load_model, unsafe_reasons
from model_tools.verify import verify_tflite

EXAMPLE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()
_EXAMPLES = int(os.environ.get("TINYOPS_FUZZ_EXAMPLES", "0"))
MEMORY_LIMIT = 32 * 1024 * 1024  # bytes any one refusal may allocate (the model is 11 KB)


def fuzz(default: int):
    return settings(max_examples=_EXAMPLES or default, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@st.composite
def damaged(draw) -> bytes:
    """The example model with 1–3 kinds of damage a cable, a disk or an attacker causes."""
    buf = bytearray(EXAMPLE)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "byte", "offset", "length", "truncate", "splice",
                                     "zero", "copy"]))
        n = len(buf)
        if n < 8:
            break
        pos = draw(st.integers(0, n - 1))
        if kind == "flip":
            buf[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "byte":
            buf[pos] = draw(st.integers(0, 255))
        elif kind in ("offset", "length"):  # forged 32-bit words: offsets, vector lengths
            word = draw(st.sampled_from([0, 1, 4, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
                                         n, n - 4, n + 4])) if kind == "offset" else \
                draw(st.integers(0, 2**32 - 1))
            at = (pos // 4) * 4
            buf[at:at + 4] = word.to_bytes(4, "little")
        elif kind == "truncate":
            del buf[pos:]
        elif kind == "splice":
            buf[pos:pos] = draw(st.binary(min_size=1, max_size=64))
        elif kind == "zero":
            end = min(n, pos + draw(st.integers(1, 256)))
            buf[pos:end] = bytes(end - pos)
        else:  # copy a region elsewhere (structures pointing into other structures)
            src = draw(st.integers(0, n - 1))
            size = draw(st.integers(1, 128))
            chunk = bytes(buf[src:src + size])
            buf[pos:pos + len(chunk)] = chunk
    return bytes(buf)


def bounded(fn, *args, **kwargs):
    """Run ``fn``; return (result or the exception, peak bytes allocated)."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args, **kwargs)
        except Exception as exc:  # classified by the caller
            out = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return out, peak


def test_the_real_model_passes_every_entry_point(tmp_path: Path) -> None:
    verify_tflite(EXAMPLE)
    path = tmp_path / "m.tflite"
    path.write_bytes(EXAMPLE)
    assert load_model(path).tflite is not None
    assert Artifact.from_bytes(EXAMPLE, "m.tflite").kind == "model"


@fuzz(200)
@given(data=damaged())
def test_damaged_models_are_refused_cleanly_with_bounded_memory(data: bytes) -> None:
    out, peak = bounded(verify_tflite, data)
    if isinstance(out, Exception):
        assert isinstance(out, InvalidModelError), f"{type(out).__name__}: {out}"
        assert out.exit_code == 2 and out.message and "\n" not in out.message
    assert peak < MEMORY_LIMIT, f"verifying {len(data)} B took {peak / 1e6:.0f} MB"


@fuzz(150)
@given(data=st.one_of(damaged(), st.binary(max_size=2048)),
       suffix=st.sampled_from([".tflite", ".keras", ".h5", ".bin", ""]))
def test_load_model_refuses_any_file_with_an_input_error(tmp_path_factory, data: bytes,
                                                         suffix: str) -> None:
    path = tmp_path_factory.mktemp("fuzz") / f"model{suffix}"
    path.write_bytes(data)
    out, peak = bounded(load_model, path, load_float=False)  # no TensorFlow import
    if isinstance(out, Exception):
        assert isinstance(out, ModelInputError), f"{type(out).__name__}: {out}"
        assert out.exit_code == 2 and "\n" not in out.message
    assert peak < MEMORY_LIMIT


@fuzz(300)
@given(data=st.one_of(damaged(), st.binary(max_size=4096)),
       name=st.sampled_from(["m.tflite", "fw.bin", "fw.uf2", "app.signed.bin", "x"]))
def test_artifact_sniffing_never_raises_anything_else(data: bytes, name: str) -> None:
    try:
        artifact = Artifact.from_bytes(data, name)
    except TinyOpsError as exc:
        assert exc.exit_code in (1, 2) and "\n" not in exc.message
        return
    assert artifact.size == len(data) and len(artifact.sha256) == 64


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.sampled_from(["class_name", "module", "config", "layers", "name",
                                       "registered_name", "inbound_nodes", "x"]), inner,
                      max_size=5),
    max_leaves=30)


@fuzz(200)
@given(config=json_values)
def test_keras_safety_scan_handles_any_config(config) -> None:
    reasons = unsafe_reasons(config)
    assert isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)


@fuzz(100)
@given(config=json_values, extra=st.binary(max_size=64), raw=st.booleans())
def test_keras_zip_with_any_config_is_scanned_or_refused(tmp_path_factory, config, extra: bytes,
                                                        raw: bool) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("config.json", extra if raw else json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
    path = tmp_path_factory.mktemp("keras") / "model.keras"
    path.write_bytes(buf.getvalue())
    out, _ = bounded(load_model, path, load_float=False)  # the scan only: no TensorFlow
    if isinstance(out, Exception):
        assert isinstance(out, ModelInputError), f"{type(out).__name__}: {out}"
    elif unsafe_reasons(config) and not raw:
        raise AssertionError("an unsafe config was accepted")
