"""The operator name set in the app is the one the CLI's records carry (one station setting)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from device_drivers import paths
from fleet_ops.records import OPERATOR_ENV, open_store

MODEL = paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite"


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *args], capture_output=True,
                          text=True, timeout=120, check=False)


def test_a_cli_record_names_the_operator_set_in_the_app(
        qtbot, make_window, virtual_board, monkeypatch: pytest.MonkeyPatch) -> None:
    from PySide6.QtWidgets import QInputDialog

    monkeypatch.delenv(OPERATOR_ENV, raising=False)
    win = make_window(watch=False)
    asked: list[str] = []

    def answer(parent, title, label, text=""):  # the dialog, answered by the "user"
        asked.append(text)
        return "  Ada   Lovelace ", True

    monkeypatch.setattr(QInputDialog, "getText", answer)
    action = next(a for a in win.actions() if a.text() == "Operator name…")
    action.trigger()
    assert asked and asked[0] != "Ada Lovelace"  # it showed the previous name
    assert win.settings.operator == "Ada Lovelace"
    assert "Ada Lovelace" in win.message.message
    stored = json.loads((paths.config_dir() / "settings.json").read_text())
    assert stored["operator"] == "Ada Lovelace"
    win.settings.sync()
    assert "Lovelace" not in win.settings.path.read_text()  # not a GUI-only setting

    proc = _cli("flash", str(MODEL), "--port", virtual_board.port, "--json")
    assert proc.returncode == 0, proc.stderr
    rec = open_store().list(operation="flash")[0]
    assert (rec.result, rec.operator) == ("ok", "Ada Lovelace")

    # --operator overrides it for one command, and only for that one
    proc = _cli("--operator", "Grace Hopper", "flash", str(MODEL), "--port",
                virtual_board.port, "--json")
    assert proc.returncode == 0, proc.stderr
    assert open_store().list(operation="flash")[0].operator == "Grace Hopper"
    assert win.settings.operator == "Ada Lovelace"


def test_the_cli_operator_option_does_not_outlive_the_command(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from app.cli import main

    monkeypatch.delenv(OPERATOR_ENV, raising=False)
    assert main(["--operator", "Grace", "records", "--json"]) == 0
    capsys.readouterr()
    assert OPERATOR_ENV not in os.environ
    monkeypatch.setenv(OPERATOR_ENV, "Env Name")
    assert main(["--operator", "Grace", "records", "--json"]) == 0
    assert os.environ[OPERATOR_ENV] == "Env Name"
