"""The back-end registry: kinds recognised by the back ends, choice, an open session."""

from __future__ import annotations

import hashlib
import struct
from types import SimpleNamespace
from typing import Any

import pytest

from device_drivers.errors import InputError
from device_drivers.flashing import Artifact, FlashOptions, choose_backend, flash, get_backend
from device_drivers.flashing import mcuboot as mcuboot_mod
from device_drivers.flashing.base import KINDS, sniff_kind
from device_drivers.flashing.registry import backends
from device_drivers.flashing.smp import SmpBackend
from device_drivers.mcuboot_image import IMAGE_MAGIC
from tinyops_base.uf2 import encode_uf2

MODEL = b"\x1c\x00\x00\x00TFL3" + bytes(64)


@pytest.mark.parametrize(("data", "name", "kind"), [
    (MODEL, "m.tflite", "model"),
    (struct.pack("<I", IMAGE_MAGIC) + bytes(60), "app.signed.bin", "mcuboot-image"),
    (encode_uf2(b"x" * 300, 0x1000, 7), "m.uf2", "uf2"),
    (b"\xe9" + bytes(40), "fw.bin", "esp-image"),
    (b"\xe9" + bytes(40), "fw.img", "binary"),  # an ESP image is only recognised as .bin
    (b"plain bytes", "x.dat", "binary"),
])
def test_each_kind_is_recognised_by_its_back_end(data: bytes, name: str, kind: str) -> None:
    assert sniff_kind(data, name) == kind
    assert Artifact.from_bytes(data, name).kind == kind


def test_recognition_order_does_not_depend_on_import_order() -> None:
    """A TFL3 model that also starts like an ESP image must stay a model, whichever back-end
    module was imported first (the registry follows MODULES, not import order)."""
    import subprocess
    import sys

    code = ("import device_drivers.flashing.esp, device_drivers.flashing.uf2\n"
            "from device_drivers.flashing.registry import backends, recognise_kind\n"
            "print([c.name for c in backends()])\n"
            "print(recognise_kind(b'\\xe9\\x00\\x00\\x00TFL3' + bytes(40), 'm.bin'))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, check=True).stdout.split("\n")
    assert out[:2] == ["['smp', 'uf2', 'esp', 'arduino']", "model"]


def test_every_back_end_declares_known_kinds_and_claims_are_unique() -> None:
    classes = backends()
    assert [c.name for c in classes] == ["smp", "uf2", "esp", "arduino"]
    claimed = [kind for c in classes for kind in c.claims]
    assert len(claimed) == len(set(claimed))
    for cls in classes:
        assert set(cls.kinds) <= set(KINDS) and set(cls.claims) <= set(cls.kinds)
    taken = {kind for c in classes for kind in c.kinds}
    assert taken == set(KINDS)  # every kind has a back end that takes it


def _board(backend: str | None) -> Any:
    return SimpleNamespace(backend=backend)


def test_choice_explicit_then_claimed_kind_then_board_then_smp() -> None:
    model = Artifact.from_bytes(MODEL, "m.tflite")
    uf2 = Artifact.from_bytes(encode_uf2(b"x" * 300, 0x1000, 7), "m.uf2")
    assert choose_backend(model, _board("esp"), "virtual") == "smp"
    assert choose_backend(uf2, _board("esp")) == "uf2"  # only the uf2 back end takes it
    assert choose_backend(model, _board("esp")) == "esp"
    assert choose_backend(model, _board("virtual")) == "smp"
    assert choose_backend(model, _board("no-such-thing")) == "smp"
    assert choose_backend(model, None) == "smp"
    with pytest.raises(InputError, match="smp, uf2, esp, arduino"):
        choose_backend(model, None, "jtag")
    assert type(get_backend("virtual")) is SmpBackend


class _Session:
    """An open session to a stock SMP server (no runtime): it stores and hashes files."""

    port = "fake"

    def __init__(self) -> None:
        self.stored: dict[str, bytes] = {}
        self.closed = False

    def model_info(self) -> None:
        return None

    def upload_file(self, data: bytes, dest: str, progress: Any = None,
                    cancel: Any = None) -> Any:
        self.stored[dest] = data
        digest = hashlib.sha256(data).hexdigest()
        return SimpleNamespace(sha256=digest, device_sha256=digest, verify_method="sha256",
                               retries=0)

    def close(self) -> None:
        self.closed = True


def test_an_open_session_is_handed_to_the_smp_back_end(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_port(*_: object, **__: object) -> None:
        raise AssertionError("the back end opened the port although it was given a session")

    monkeypatch.setattr(mcuboot_mod, "open_session", no_port)
    session = _Session()
    result = flash(Artifact.from_bytes(MODEL, "m.tflite"), "fake",
                   backend=SmpBackend(session=session),
                   options=FlashOptions(dest="/lfs/m.tflite"))
    assert result.ok and result.verified and session.stored == {"/lfs/m.tflite": MODEL}
    assert not session.closed  # it stays open for its owner
