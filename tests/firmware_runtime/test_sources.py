"""The firmware's sources: manifest pins, mirror lookup, hash checks, TFLM's patches."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from device_drivers.errors import InputError
from device_drivers.firmware import sources
from device_drivers.firmware.build import op_set

MIRROR = os.environ.get("TINYOPS_FIRMWARE_MIRROR")


def _dep(name: str) -> sources.Dependency:
    return next(d for d in sources.load_manifest() if d.name == name)


def test_manifest_pins_every_dependency_with_commit_sha_and_upstream():
    deps = sources.load_manifest()
    assert {d.name for d in deps} == {"tflite-micro", "cmsis-nn", "cmsis-6", "cortex-dfp",
                                      "flatbuffers", "gemmlowp", "ruy", "kissfft"}
    for d in deps:
        assert len(d.commit) == 40 and int(d.commit, 16) >= 0
        assert len(d.sha256) == 64 and len(d.tree_sha256) == 64
        assert d.upstream.startswith("https://github.com/")
        assert d.archive.startswith(f"{d.name}-{d.commit[:12]}")
    patches = {p for d in deps for _, p in d.patches}
    assert patches == {"tensorflow/lite/micro/tools/make/flatbuffers.patch",
                       "third_party/kissfft/kissfft.patch"}


def test_op_set_is_declared_once_and_parsed():
    ops = op_set()
    names = [name for name, _, _ in ops]
    assert len(names) == len(set(names)) and "CONV_2D" in names and "SOFTMAX" in names
    for _name, method, kernels in ops:
        assert method.startswith("Add") and kernels


def _small_mirror(tmp: Path, name: str) -> sources.Dependency:
    assert MIRROR, "needs TINYOPS_FIRMWARE_MIRROR"
    dep = _dep(name)
    shutil.copy(Path(MIRROR) / dep.archive, tmp / dep.archive)
    return dep


@pytest.mark.skipif(not MIRROR, reason="TINYOPS_FIRMWARE_MIRROR not set")
def test_fetch_from_mirror_unpacks_checks_and_patches(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    deps = [_small_mirror(mirror, "tflite-micro"), _small_mirror(mirror, "flatbuffers")]
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    out = sources.fetch_sources(deps)
    base_h = (out["flatbuffers"] / "include/flatbuffers/base.h").read_text()
    assert "For TFLM, we always want FLATBUFFERS_LOCALE_INDEPENDENT" in base_h  # TFLM's patch
    stamp = json.loads((out["flatbuffers"] / sources.STAMP).read_text())
    assert stamp["origin"] == "mirror" and stamp["commit"] == deps[1].commit
    # a second fetch reuses the unpacked tree (no archive needed any more)
    for f in mirror.iterdir():
        f.unlink()
    assert sources.fetch_sources(deps) == out


@pytest.mark.skipif(not MIRROR, reason="TINYOPS_FIRMWARE_MIRROR not set")
def test_a_mirror_archive_with_another_hash_is_refused(tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    dep = _small_mirror(mirror, "ruy")
    data = bytearray((mirror / dep.archive).read_bytes())
    data[-1] ^= 1
    (mirror / dep.archive).write_bytes(bytes(data))
    monkeypatch.setenv(sources.MIRROR_ENV, str(mirror))
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(InputError, match="sha256"):
        sources.fetch_sources([dep])
    assert not (tmp_path / "cache/src" / dep.dirname).exists()


def test_no_mirror_and_no_network_says_what_to_set(tmp_path, monkeypatch):
    dep = sources.Dependency("ruy", "http://127.0.0.1:9", "d" * 40, "ruy-dddddddddddd.tar.gz",
                             "0" * 64, "0" * 64, ("ruy",), "Apache-2.0")
    monkeypatch.delenv(sources.MIRROR_ENV, raising=False)
    monkeypatch.setenv(sources.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(InputError) as err:
        sources.fetch_sources([dep])
    assert sources.MIRROR_ENV in str(err.value) and "ruy-dddddddddddd.tar.gz" in str(err.value)


def test_tree_digest_changes_with_any_file(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x.h").write_text("int x;")
    first = sources.tree_digest(tmp_path, ("a",))
    (tmp_path / "a/x.h").write_text("int y;")
    assert sources.tree_digest(tmp_path, ("a",)) != first
