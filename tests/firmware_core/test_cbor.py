"""The firmware's CBOR codec (firmware/core/cbor.c) against the protocol's test vectors and
cbor2: decode + canonical re-encode must give the vectors' bytes; anything malformed is
rejected; whatever it accepts, cbor2 reads the same and writes the same canonical bytes."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import cbor2
import pytest

VECTORS = Path(__file__).resolve().parents[2] / "resources" / "protocol" / "vectors.json"
HEADER = 8


def _run(tool: Path, bodies: list[bytes]) -> list[str]:
    text = "".join(b.hex() + "\n" for b in bodies)
    out = subprocess.run([str(tool)], input=text, capture_output=True, text=True,
                         timeout=60, check=True).stdout.split()
    assert len(out) == len(bodies)
    return out


def _bodies() -> list[tuple[str, bytes]]:
    return [(v["title"], bytes.fromhex(v["hex"])[HEADER:])
            for v in json.loads(VECTORS.read_text())]


def test_every_vector_decodes_and_reencodes_to_the_same_bytes(cbor_tool: Path) -> None:
    vectors = _bodies()
    out = _run(cbor_tool, [body for _title, body in vectors])
    for (title, body), got in zip(vectors, out, strict=True):
        assert got == body.hex(), title


def test_truncated_or_padded_vectors_are_rejected(cbor_tool: Path) -> None:
    cases = []
    for _title, body in _bodies():
        cases += [body[:n] for n in range(len(body))]  # every proper prefix
        cases.append(body + b"\x00")  # a trailing byte
    assert set(_run(cbor_tool, cases)) == {"REJECT"}


def test_nesting_depth_indefinite_lengths_and_bad_utf8(cbor_tool: Path) -> None:
    deep_ok = b"\x81" * 8 + b"\x00"  # 8 nested arrays: the limit
    too_deep = b"\x81" * 9 + b"\x00"
    cases = [deep_ok, too_deep,
             b"\x9f\x01\xff",          # indefinite array
             b"\x5f\x41\x00\xff",      # indefinite bytes
             b"\x62\xc3\x28",          # invalid UTF-8
             b"\x63\xed\xa0\x80",      # a surrogate
             b"\xc1\x00",              # a tag
             b"\x1c",                  # reserved additional info
             b"\xbb\xff\xff\xff\xff\xff\xff\xff\xff",  # a map claiming 2^64 pairs
             b"\x7a\xff\xff\xff\xff"]  # a text string longer than the input
    out = _run(cbor_tool, cases)
    assert out[0] == deep_ok.hex()
    assert out[1:] == ["REJECT"] * (len(cases) - 1)


def test_floats_are_written_in_their_shortest_exact_form(cbor_tool: Path) -> None:
    values = [0.0, -0.0, 1.0, 0.5, 0.25, 31.5, 0.0078125, 65504.0, 5.960464477539063e-08,
              1e-7, 0.1, 3.4028234663852886e38, 1e300, float("inf"), float("-inf")]
    # written as doubles; the codec must shorten each exactly as cbor2's canonical mode
    bodies = [b"\xfb" + __import__("struct").pack(">d", v) for v in values]
    out = _run(cbor_tool, bodies)
    for value, got in zip(values, out, strict=True):
        assert got == cbor2.dumps(value, canonical=True).hex(), value


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_random_and_mutated_inputs_agree_with_cbor2(cbor_tool: Path, seed: int) -> None:
    rng = random.Random(seed)
    bodies = [body for _t, body in _bodies()]
    cases = []
    for _ in range(1500):
        if rng.random() < 0.5:
            cases.append(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 24))))
        else:
            b = bytearray(rng.choice(bodies))
            for _ in range(rng.randrange(1, 4)):
                b[rng.randrange(len(b))] = rng.randrange(256)
            cases.append(bytes(b))
    accepted = 0
    for case, got in zip(cases, _run(cbor_tool, cases), strict=True):
        if got in ("REJECT", "UNSUPPORTED"):
            continue
        accepted += 1
        try:
            decoded = cbor2.loads(case)
        except (cbor2.CBORDecodeError, TypeError) as exc:  # pragma: no cover - a failure
            pytest.fail(f"firmware accepted {case.hex()} that cbor2 rejects: {exc}")
        if isinstance(decoded, float) and decoded != decoded:
            continue
        assert got == cbor2.dumps(decoded, canonical=True).hex(), case.hex()
    assert accepted > 100  # the comparison really ran
