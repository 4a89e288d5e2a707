"""Test isolation: every test gets its own TinyOps home (settings, records, runtime dir).

What may be missing on a developer's machine (emulators, PostgreSQL, Mosquitto) skips there
and fails in CI, through the one reading of ``CI`` in ``tests/ci_guard.py`` (``in_ci``,
``unavailable``: a module, since conftest files cannot be imported by name). Hard
dependencies are imported plainly, never ``importorskip``-ed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

BLOCK_TFLM = os.environ.get("TINYOPS_BLOCK_TFLM") == "1"
"""Run as on a system without a tflite-micro wheel: ``TINYOPS_BLOCK_TFLM=1 uv run pytest -m
no_tflm`` (CI does). The blocker is ``tests/no_tflm/sitecustomize.py``: imported here, and
put on ``PYTHONPATH`` so that every child Python (interpreter workers) is blocked too."""
if BLOCK_TFLM:
    import importlib.util as _util
    import sys as _sys
    from pathlib import Path as _Path

    _blocker = _Path(__file__).parent / "no_tflm"
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(_blocker), os.environ.get("PYTHONPATH")) if p)
    _spec = _util.spec_from_file_location("_tinyops_block_tflm", _blocker / "sitecustomize.py")
    assert _spec is not None and _spec.loader is not None
    _module = _util.module_from_spec(_spec)
    _spec.loader.exec_module(_module)
    _sys.modules["_tinyops_block_tflm"] = _module


def pytest_report_header() -> str:
    from ci_guard import in_ci

    return f"CI mode: {'on (missing tools fail)' if in_ci() else 'off (missing tools skip)'}"


@pytest.fixture(autouse=True)
def tinyops_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("tinyops-home")
    monkeypatch.setenv("TINYOPS_HOME", str(home))
    return home


class McubootImages:
    """The one builder of MCUboot images for the tests: MCUboot's own ``imgtool`` signs them.

    ``build(body, "1.2.3")`` gives an unsigned image (header, body, TLV area with the
    SHA256 TLV); ``key=mcuboot_images.key()`` signs it (ECDSA P-256) and adds the key hash;
    ``security_counter=N`` adds a protected TLV area (covered by the hash).
    """

    def __init__(self, folder: os.PathLike[str] | str) -> None:
        from pathlib import Path

        self.folder = Path(folder)
        self._keys: dict[str, object] = {}
        self._count = 0

    def key(self, name: str = "signing") -> os.PathLike[str]:
        """A private key file (generated once per name); ``public_key(name)`` is its pair."""
        from imgtool import keys

        path = self.folder / f"{name}.pem"
        if name not in self._keys:
            self._keys[name] = keys.ECDSA256P1.generate()
            self._keys[name].export_private(str(path))  # type: ignore[attr-defined]
        return path

    def public_key(self, name: str = "signing") -> os.PathLike[str]:
        self.key(name)
        path = self.folder / f"{name}.pub.pem"
        self._keys[name].export_public(str(path))  # type: ignore[attr-defined]
        return path

    def build(self, body: bytes = bytes(range(256)) * 8, version: str = "1.2.3", *,
              key: os.PathLike[str] | None = None, header_size: int = 0x200,
              security_counter: int | None = None, load_addr: int = 0) -> bytes:
        import contextlib
        import io

        from imgtool import keys
        from imgtool.image import Image
        from imgtool.version import decode_version

        self._count += 1
        src = self.folder / f"body{self._count}.bin"
        out = self.folder / f"image{self._count}.signed.bin"
        src.write_bytes(body)
        image = Image(version=decode_version(version), header_size=header_size,
                      pad_header=True, security_counter=security_counter,
                      load_addr=load_addr)
        image.load(str(src))
        with contextlib.redirect_stdout(io.StringIO()):  # imgtool prints while signing
            image.create(keys.load(str(key)) if key else None, "hash", None)
        image.save(str(out))
        return out.read_bytes()


@pytest.fixture
def mcuboot_images(tmp_path_factory: pytest.TempPathFactory) -> McubootImages:
    """Build (and sign) MCUboot images with imgtool; see ``McubootImages``."""
    return McubootImages(tmp_path_factory.mktemp("mcuboot"))


@pytest.fixture
def pty_path() -> Iterator[str]:
    """A raw pseudo-terminal's device path (the other end stays open until the test ends)."""
    import tty  # POSIX only

    master, slave = os.openpty()
    tty.setraw(slave)
    yield os.ttyname(slave)
    for fd in (master, slave):
        with contextlib.suppress(OSError):
            os.close(fd)
