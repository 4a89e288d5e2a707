"""Corpus models (model_tools.corpus, int8) on the firmware in QEMU, against the host's TFLM.

Every model the reference build loads must give the host's outputs byte for byte (both are
TFLM's reference kernels; only the ABI differs). The CMSIS-NN build must load and run them;
where Arm's kernels round differently the differing samples are reported, not hidden (the
SMP path's `validate` then names the first diverging operator). The arena the firmware
reports is compared with the host's figure: the 32-bit target's is smaller.

To keep CI short, two small architectures are generated here (conv1d accelerometer, DS-CNN
keyword spotting); the models come from the corpus test's own pytest cache when it ran first.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import inspect
from pathlib import Path

import numpy as np
import pytest
from _host import host_outputs, quantized_inputs

from device_drivers.firmware.probe import run_selftest

NAMES = ("conv1d_accel", "ds_cnn")
SAMPLES = 4


@pytest.fixture(scope="module")
def corpus_models(request: pytest.FixtureRequest) -> dict[str, Path]:
    from model_tools import corpus
    from model_tools.quantize import quantize

    key = hashlib.sha256(inspect.getsource(corpus).encode()
                         + importlib.metadata.version("tensorflow").encode()).hexdigest()[:12]
    folder = Path(request.config.cache.mkdir(f"tinyops-corpus-{key}"))  # test_corpus' folder
    out = {}
    for name in NAMES:
        model = corpus.build_one(name, folder)
        int8 = folder / f"{name}_int8.tflite"
        if not int8.is_file():
            quantize(model.keras, model.calib, mode="int8", output=int8, measure_arena=False)
        out[name] = int8
    return out


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("cpu", "kernels", "machine"),
                         [("cortex-m3", "reference", "mps2-an385"),
                          ("cortex-m4", "cmsis-nn", "mps2-an386")])
def test_corpus_model_on_the_firmware(fw_build, corpus_models, name, cpu, kernels, machine):
    path = corpus_models[name]
    model = path.read_bytes()
    calib = np.load(path.with_name(f"{name}_calib.npz"))
    samples = calib[next(iter(calib.files))][:SAMPLES]
    inputs, arrays = quantized_inputs(model, samples)
    expected = host_outputs(model, arrays)
    lines = run_selftest(fw_build(cpu, kernels).elf, machine, model, inputs, timeout_s=300)
    head = lines[0]
    assert head["load"] == 0, head["log"]
    got = [bytes.fromhex(ln["out"]) for ln in lines if "i" in ln]
    assert len(got) == SAMPLES and all(ln["rc"] == 0 for ln in lines if "i" in ln)
    if kernels == "reference":
        assert got == expected
    else:
        differing = sum(g != e for g, e in zip(got, expected, strict=True))
        print(f"{name} on {cpu} {kernels}: {differing}/{SAMPLES} samples differ from host TFLM")
    assert head["arena_used"] > 0
