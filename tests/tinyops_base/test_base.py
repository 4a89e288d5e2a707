"""The shared base: one error hierarchy, one progress helper, one UF2 parser, one validator."""

from __future__ import annotations

import argparse
import threading

import pytest

from tinyops_base.errors import Cancelled, InputError, TinyOpsError
from tinyops_base.progress import check_cancel, sub_progress
from tinyops_base.uf2 import (
    BLOCK_SIZE,
    decode_uf2,
    encode_uf2,
    looks_like_uf2,
    parse_uf2,
)
from tinyops_base.validators import positive_float, positive_int


def test_both_cores_raise_the_shared_classes() -> None:
    import device_drivers.errors as dd
    import model_tools.errors as mt

    assert dd.Cancelled is mt.Cancelled is Cancelled
    assert issubclass(mt.ModelInputError, InputError) and mt.ModelInputError.exit_code == 2
    assert issubclass(mt.RuntimeUnavailable, TinyOpsError)
    assert not issubclass(mt.RuntimeUnavailable, InputError)
    assert issubclass(dd.PortError, InputError) and issubclass(dd.DeviceError, TinyOpsError)
    err = mt.InvalidModelError("bad file", "export it again")
    assert str(err) == "bad file (export it again)" and err.exit_code == 2


def test_sub_progress_maps_and_clamps() -> None:
    seen: list[tuple[float, str]] = []
    step = sub_progress(lambda f, m: seen.append((f, m)), 0.2, 0.6)
    for f in (-1.0, 0.0, 0.5, 1.0, 3.0):
        step(f, "x")
    assert [round(f, 6) for f, _ in seen] == [0.2, 0.2, 0.4, 0.6, 0.6]


def test_check_cancel() -> None:
    token = threading.Event()
    check_cancel(token, "upload")
    check_cancel(None, "upload")
    token.set()
    with pytest.raises(Cancelled, match="upload cancelled"):
        check_cancel(token, "upload")


@pytest.mark.parametrize("text", ["0", "-3", "x", "1.5", "inf", "nan"])
def test_positive_int_refuses(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_int(text)


@pytest.mark.parametrize("text", ["0", "-0.1", "x", "inf", "-inf", "nan"])
def test_positive_float_refuses_inf_and_nan(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        positive_float(text)


def test_validators_accept() -> None:
    assert positive_int("115200") == 115200 and positive_float("0.25") == 0.25


# ---------------------------------------------------------------- the one UF2 codec
def _blocks(raw: bytes) -> list[bytes]:
    return [raw[i:i + BLOCK_SIZE] for i in range(0, len(raw), BLOCK_SIZE)]


def test_uf2_round_trip_and_sniffing() -> None:
    data = bytes(range(256)) * 5 + b"tail"
    raw = encode_uf2(data, 0x10100000, 0xE48BFF56)
    assert looks_like_uf2(raw) and not looks_like_uf2(raw[:100]) and not looks_like_uf2(data)
    back = decode_uf2(raw)
    assert back.start == 0x10100000 and back.data[:len(data)] == data
    assert back.family_id == 0xE48BFF56 and back.blocks == len(_blocks(raw))


def test_uf2_blocks_out_of_order_are_refused() -> None:
    """The strict rule: blocks numbered 0..N-1 in file order (a shuffled file is damaged)."""
    blocks = _blocks(encode_uf2(bytes(2000), 0x2000, 7))
    swapped = b"".join([blocks[1], blocks[0], *blocks[2:]])
    with pytest.raises(InputError, match="out of order"):
        parse_uf2(swapped)
    with pytest.raises(InputError, match="out of order"):
        decode_uf2(swapped)
    repeated = b"".join([blocks[0], blocks[0], *blocks[2:]])
    with pytest.raises(InputError, match="out of order"):
        parse_uf2(repeated)


def test_uf2_truncated_and_concatenated_files() -> None:
    one = encode_uf2(bytes(1000), 0x1000, 1)
    two = encode_uf2(bytes(600), 0x9000, 2)
    with pytest.raises(InputError, match="truncated"):
        parse_uf2(one[:-BLOCK_SIZE])
    image = parse_uf2(one + two)  # two complete runs back to back: a multi-family file
    assert image.family_id is None and image.span == (0x1000, 0x9000 + 768)
    with pytest.raises(InputError, match="mixes board families"):
        decode_uf2(one + two)
    with pytest.raises(InputError, match="out of order"):
        parse_uf2(one[:-BLOCK_SIZE] + two)  # a run cut short, then a new one


def test_uf2_encoder_refuses_bad_input() -> None:
    with pytest.raises(InputError, match="word-aligned"):
        encode_uf2(b"x", 0x1001, None)
    with pytest.raises(InputError, match="nothing to write"):
        encode_uf2(b"", 0x1000, None)
