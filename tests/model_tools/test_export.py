"""Export formats: the C array compiles and holds the model; the UF2 decodes back to it."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_tools.errors import ModelInputError
from model_tools.export import export_model
from tinyops_base.errors import InputError
from tinyops_base.uf2 import decode_uf2, encode_uf2, parse_uf2

GXX = shutil.which("g++")
MAIN = """
#include <cstdint>
#include <cstdio>
#include "{name}.h"
int main() {{
  if (reinterpret_cast<uintptr_t>({name}) % {name_up}_ALIGNMENT != 0) return 3;
  if ({name}_len != {name_up}_LEN) return 4;
  std::fwrite({name}, 1, {name}_len, stdout);
  std::fprintf(stderr, "%s\\n", {name}_sha256);
  return 0;
}}
"""


def _compile_and_dump(src_dir: Path, name: str, suffix: str, tmp: Path) -> tuple[bytes, str]:
    (tmp / "main.cc").write_text(MAIN.format(name=name, name_up=name.upper()))
    exe = tmp / "dump"
    subprocess.run([GXX, "-std=c++11", "-Wall", "-Werror", "-I", str(src_dir), str(tmp / "main.cc"),
                    str(src_dir / f"{name}{suffix}"), "-o", str(exe)], check=True, timeout=120)
    run = subprocess.run([str(exe)], capture_output=True, timeout=30, check=True)
    return run.stdout, run.stderr.decode().strip()


@pytest.mark.skipif(GXX is None, reason="no C++ compiler")
def test_c_array_compiles_aligned_and_holds_the_model(example_dir: Path, tmp_path: Path) -> None:
    model = example_dir / "model_int8.tflite"
    result = export_model(model, "c", tmp_path / "out")
    data, digest = _compile_and_dump(tmp_path / "out", result.name, ".cc", tmp_path)
    assert data == model.read_bytes()
    assert digest == hashlib.sha256(data).hexdigest() == result.sha256
    header = (tmp_path / "out" / f"{result.name}.h").read_text()
    assert "MODEL_INT8_INPUT_SCALE" in header and "MODEL_INT8_ARENA_MIN" in header  # from card


@pytest.mark.skipif(GXX is None, reason="no C++ compiler")
def test_arduino_library(example_dir: Path, tmp_path: Path) -> None:
    model = example_dir / "model_int8.tflite"
    result = export_model(model, "arduino", tmp_path, name="vibration")
    root = tmp_path / "Vibration"
    props = dict(line.split("=", 1) for line in
                 (root / "library.properties").read_text().splitlines() if "=" in line)
    assert props["name"] == "Vibration" and props["includes"] == "vibration.h"
    assert (root / "examples" / "VibrationInfo" / "VibrationInfo.ino").is_file()
    data, _ = _compile_and_dump(root / "src", "vibration", ".cpp", tmp_path)
    assert data == model.read_bytes() and len(result.files) == 4


def _independent_uf2_parse(raw: bytes) -> tuple[dict[int, bytes], set[int]]:
    """Straight from the UF2 spec, sharing no code with tinyops_base.uf2."""
    blocks, families = {}, set()
    assert len(raw) % 512 == 0
    for n in range(len(raw) // 512):
        b = raw[n * 512:(n + 1) * 512]
        m0, m1, flags, addr, size, blockno, count, fam = struct.unpack("<8I", b[:32])
        assert (m0, m1) == (0x0A324655, 0x9E5D5157)
        assert struct.unpack("<I", b[508:])[0] == 0x0AB16F30
        assert blockno == n and count == len(raw) // 512 and size <= 476
        if flags & 0x2000:
            families.add(fam)
        blocks[addr] = b[32:32 + size]
    return blocks, families


def test_uf2_payload_byte_for_byte(example_dir: Path, tmp_path: Path) -> None:
    model = example_dir / "model_int8.tflite"
    data = model.read_bytes()
    result = export_model(model, "uf2", tmp_path / "m.uf2", uf2_address=0x10100000,
                          uf2_family=0xE48BFF56, region_size=1 << 20)
    raw = (tmp_path / "m.uf2").read_bytes()
    blocks, families = _independent_uf2_parse(raw)
    assert families == {0xE48BFF56} and min(blocks) == 0x10100000
    joined = b"".join(blocks[a] for a in sorted(blocks))
    assert joined[:len(data)] == data and set(joined[len(data):]) <= {0xFF}
    assert result.extra["address"] == "0x10100000"
    image = parse_uf2(raw)  # the strict parser the flashing back end uses
    assert image.family_id == 0xE48BFF56 and image.read(0x10100000, len(data)) == data


def test_uf2_region_too_small_and_non_tflite(example_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelInputError, match="larger than"):
        export_model(example_dir / "model_int8.tflite", "uf2", tmp_path / "m.uf2",
                     uf2_address=0x1000, uf2_family=1, region_size=4096)
    with pytest.raises(ModelInputError, match="quantize it first"):
        export_model(example_dir / "model.keras", "c", tmp_path)


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=3000), st.integers(0, 2**26).map(lambda a: a * 4),
       st.one_of(st.none(), st.integers(0, 2**32 - 1)))
def test_uf2_round_trip(data: bytes, address: int, family: int | None) -> None:
    raw = encode_uf2(data, address, family)
    back = decode_uf2(raw)
    assert back.start == address and back.data[:len(data)] == data
    assert back.family_id == family
    blocks, _ = _independent_uf2_parse(raw)
    assert b"".join(blocks[a] for a in sorted(blocks))[:len(data)] == data


@settings(max_examples=60, deadline=None)
@given(st.binary(min_size=1, max_size=2048))
def test_uf2_decoder_refuses_garbage(raw: bytes) -> None:
    with pytest.raises(InputError):
        decode_uf2(raw)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([0, 4, 20, 24, 508]), st.integers(1, 255), st.integers(0, 2))
def test_uf2_decoder_refuses_damaged_headers(offset: int, xor: int, block: int) -> None:
    raw = bytearray(encode_uf2(bytes(range(256)) * 3, 0x2000, 7))
    raw[block * 512 + offset] ^= xor  # a magic, the block number or the block count
    with pytest.raises(InputError):
        decode_uf2(bytes(raw))


def test_job_signature_and_main_path(example_dir: Path, tmp_path: Path) -> None:
    from model_tools.export import export

    seen = []
    result = export(example_dir / "model_int8.tflite", output=tmp_path, fmt="arduino",
                    progress=lambda f, m: seen.append(f))
    assert Path(result.path) == tmp_path / "ModelInt8" and seen == [1.0]
    assert result.to_dict()["path"] == result.path
