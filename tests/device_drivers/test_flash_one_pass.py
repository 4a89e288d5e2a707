"""One pass from the CLI or the GUI to the device: a flash loads and sniffs its artifact once
and looks its board up once, however many boards a station flashes (issue 22, item 5).

The counters wrap the real functions wherever a module holds them (no stand-ins): the board
registry's ``get_board`` and ``lookup_board``, ``Artifact.load`` and the first recogniser of
the first back end (every sniff of an artifact's bytes calls it). The flashes are real ones,
to virtual boards (a real SMP server on a real pty), verified by the board.
"""

from __future__ import annotations

import functools
import hashlib
import json
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from app.cli import main
from app.gui.pages.flash_jobs import flash_job
from device_drivers import boards, paths
from device_drivers.flashing import Artifact, FlashOptions, base, flash, prepare, registry
from device_drivers.flashing.base import board_of
from device_drivers.virtual import VirtualBoard

MODEL = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()


@contextmanager
def counted(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Count board lookups, artifact loads and sniffs during the ``with`` block."""
    calls: Counter[str] = Counter()
    lock = threading.Lock()

    def wrap(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counting(*args: Any, **kwargs: Any) -> Any:
            with lock:
                calls[name] += 1
            return fn(*args, **kwargs)
        return counting

    def everywhere(name: str, original: Callable[..., Any]) -> None:
        """Replace ``original`` in every loaded project module that holds it by name."""
        wrapped = wrap(name, original)
        for mod in list(sys.modules.values()):
            modname = getattr(mod, "__name__", "")
            if modname.split(".")[0] in ("app", "device_drivers", "fleet_ops") and \
                    getattr(mod, original.__name__, None) is original:
                monkeypatch.setattr(mod, original.__name__, wrapped)

    registry.backends()  # every back-end module imported first: they hold lookup_board too
    everywhere("get_board", boards.get_board)
    everywhere("lookup_board", base.lookup_board)
    load = Artifact.__dict__["load"].__func__
    monkeypatch.setattr(Artifact, "load", classmethod(wrap("Artifact.load", load)))
    first = registry.backends()[0]
    kind, recognise = next((k, r) for k, r in first.kinds.items() if r is not None)
    monkeypatch.setattr(first, "kinds", {**first.kinds, kind: wrap("sniff", recognise)})
    yield calls


def _model(tmp_path: Path, n: int) -> tuple[Path, str]:
    data = MODEL + b"\x00" * (16 * n)  # a different, still valid model
    path = tmp_path / f"variant{n}.tflite"
    path.write_bytes(data)
    return path, hashlib.sha256(data).hexdigest()


def test_cli_flash_is_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    path, digest = _model(tmp_path, 1)
    with VirtualBoard(board="virtual") as vb, counted(monkeypatch) as calls:
        code = main(["flash", str(path), "--port", vb.port, "--board", "virtual", "--json"])
        assert code == 0, capsys.readouterr().err
        assert vb.loaded_model_sha256 == digest
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["ok"] and out["device_digest"] == digest and out["board"] == "virtual"
    assert calls == {"get_board": 1, "lookup_board": 1, "Artifact.load": 1, "sniff": 1}, calls


def test_station_flash_is_one_pass_for_all_boards(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, digest = _model(tmp_path, 2)
    with VirtualBoard(board="virtual", seed=1) as a, VirtualBoard(board="virtual", seed=2) as b, \
            counted(monkeypatch) as calls:
        code = main(["flash", str(path), "--port", a.port, "--port", b.port,
                     "--board", "virtual", "--json"])
        assert code == 0, capsys.readouterr().err
        assert a.loaded_model_sha256 == b.loaded_model_sha256 == digest
    assert calls == {"get_board": 1, "lookup_board": 1, "Artifact.load": 1, "sniff": 1}, calls


def test_gui_flash_job_is_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, digest = _model(tmp_path, 3)
    with VirtualBoard(board="virtual") as vb, counted(monkeypatch) as calls:
        out = flash_job(str(path), vb.port, board="virtual")
        assert vb.loaded_model_sha256 == digest
    assert out["ok"] and out["device_digest"] == digest, out
    assert calls == {"get_board": 1, "lookup_board": 1, "Artifact.load": 1, "sniff": 1}, calls


def test_an_unknown_board_is_refused_before_any_port_is_opened(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _model(tmp_path, 4)
    with counted(monkeypatch) as calls:
        code = main(["flash", str(path), "--port", "/dev/ttyNOPE9", "--board", "nope"])
    assert code == 2
    assert "nope" in capsys.readouterr().err
    assert calls["get_board"] == 1 and calls["Artifact.load"] == 1


def test_flash_given_an_artifact_prepares_it_itself_once(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The library call (no CLI): ``flash(Artifact, port, options=...)`` looks the board up
    once and the back end gets that entry; ``Artifact.sha256`` hashes the bytes once (the
    link's own upload check hashes what it sent: not counted here)."""
    data = MODEL + b"\x00" * 80
    artifact = Artifact.from_bytes(data, "five.tflite")
    hashed: list[int] = []
    real_sha256 = hashlib.sha256

    def counting_sha256(*args: Any, **kwargs: Any) -> Any:
        if sys._getframe(1).f_code.co_filename == base.__file__:
            hashed.append(1)
        return real_sha256(*args, **kwargs)

    monkeypatch.setattr(base.hashlib, "sha256", counting_sha256)
    with VirtualBoard(board="virtual") as vb, counted(monkeypatch) as calls:
        result = flash(artifact, vb.port, options=FlashOptions(board="virtual"))
        assert vb.loaded_model_sha256 == hashlib.sha256(data).hexdigest()
    assert result.ok and result.board == "virtual"
    assert calls["get_board"] == calls["lookup_board"] == 1, calls
    assert calls["Artifact.load"] == calls["sniff"] == 0, calls  # sniffed by from_bytes
    assert len(hashed) == 1


def test_prepared_flash_refuses_options_for_another_board(tmp_path: Path) -> None:
    path, _ = _model(tmp_path, 6)
    job = prepare(path, "virtual")
    assert (job.kind, job.backend, job.board_id) == ("model", "smp", "virtual")
    assert job.options(FlashOptions()).board_entry is job.board
    with pytest.raises(ValueError, match="prepared for board 'virtual'"):
        job.options(FlashOptions(board="pico"))


def test_a_back_end_called_on_its_own_still_finds_its_board() -> None:
    """``board_of``: the entry handed down, else (a back end called directly) a lookup."""
    entry = boards.get_board("virtual")
    assert board_of(FlashOptions(board="virtual", board_entry=entry)) is entry
    assert board_of(FlashOptions(board="virtual")).id == "virtual"
    assert board_of(FlashOptions()) is None
