"""`tinyops boards` and `tinyops doctor` end to end (a real `tinyops sim` as the board)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.cli import main
from device_drivers import paths


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def sim(tmp_path: Path):
    """A real `tinyops sim` process, waited for until it announces itself."""
    env = dict(os.environ)
    proc = subprocess.Popen([sys.executable, "-m", "app.cli", "sim", "--board", "nano33ble",
                             "--state", str(tmp_path / "state")],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    folder = paths.virtual_boards_dir()
    deadline = time.monotonic() + 60
    announcement = None
    while time.monotonic() < deadline and proc.poll() is None:
        files = list(folder.glob("*.json"))
        if files:
            announcement = json.loads(files[0].read_text())
            break
        time.sleep(0.1)
    if announcement is None:
        proc.kill()
        pytest.fail("tinyops sim did not start: " + proc.stderr.read().decode()[-2000:])
    yield announcement
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_boards_lists_a_running_sim(capsys, sim) -> None:
    code, out, _ = run(capsys, "boards", "--json")
    assert code == 0
    data = json.loads(out)
    virtual = [b for b in data["boards"] if b["virtual"]]
    assert len(virtual) == 1
    entry = virtual[0]
    assert entry["port"] == sim["port"]
    assert entry["board"] == "nano33ble" and entry["backend"] == "virtual"
    assert entry["mode"] == "app"

    code, out, _ = run(capsys, "boards")
    assert code == 0
    line = next(x for x in out.splitlines() if x.startswith(sim["port"]))
    assert "nano33ble" in line and "virtual" in line and " yes " in line

    code, out, _ = run(capsys, "boards", "--probe", "--json", "--port", sim["port"])
    assert code == 0
    probed = json.loads(out)["boards"][0]
    assert probed["runtime_version"].startswith("tinyops-runtime")
    assert probed["probe"]["smp"] is True

    code, out, _ = run(capsys, "boards", "--watch", "--json", "--duration", "0.5")
    assert code == 0
    events = [json.loads(line) for line in out.splitlines()]
    assert any(e["event"] == "added" and e["port"] == sim["port"] for e in events)


def test_registry_json_and_text(capsys) -> None:
    code, out, _ = run(capsys, "boards", "--registry", "--json")
    assert code == 0
    boards = json.loads(out)
    assert isinstance(boards, list) and len(boards) >= 40
    for board in boards:
        assert {"id", "name", "mcu", "flash", "ram", "usb", "backend"} <= set(board)
    code, out, _ = run(capsys, "boards", "--registry")
    assert code == 0 and "pico2" in out
    assert out.splitlines()[-1].split()[2] == str(sum(b["kind"] == "board"
                                                      for b in boards))


@pytest.mark.parametrize("argv", [["boards", "--port", "/dev/ttyNOPE9"],
                                  ["doctor", "--port", "/dev/ttyNOPE9"],
                                  ["boards", "--probe", "--port", "/dev/ttyNOPE9"]])
def test_missing_port_is_exit_2_with_one_line(capsys, argv) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert lines[0] == "error: port /dev/ttyNOPE9 does not exist"
    assert lines[1].strip().startswith("fix:") and len(lines) == 2
    assert "Traceback" not in err and out == ""


def test_missing_port_json_error(capsys) -> None:
    code, out, _ = run(capsys, "boards", "--port", "/dev/ttyNOPE9", "--json")
    assert code == 2
    assert json.loads(out) == {"ok": False, "error": "port /dev/ttyNOPE9 does not exist",
                               "hint": json.loads(out)["hint"]}


def test_alias_set_show_remove(capsys) -> None:
    code, out, _ = run(capsys, "boards", "alias", "E6614103", "line-3-left")
    assert code == 0 and "line-3-left" in out
    code, out, _ = run(capsys, "boards", "--alias", "E6614104", "line-3-right", "--json")
    assert json.loads(out) == {"ok": True, "serial": "E6614104", "alias": "line-3-right"}
    stored = json.loads((paths.config_dir() / "aliases.json").read_text())
    assert stored == {"E6614103": "line-3-left", "E6614104": "line-3-right"}
    code, _, err = run(capsys, "boards", "alias", "E6614105", "line-3-left")
    assert code == 2 and "already used" in err
    code, _, err = run(capsys, "boards", "alias", "E6614105", "bad\nname")
    assert code == 2 and "invalid alias" in err
    code, out, _ = run(capsys, "boards", "alias", "E6614103", "--remove", "--json")
    assert json.loads(out)["removed"] is True
    assert "E6614103" not in json.loads((paths.config_dir() / "aliases.json").read_text())


def test_doctor_json_and_text(capsys) -> None:
    code, out, _ = run(capsys, "doctor", "--json")
    data = json.loads(out)
    assert code == (0 if data["ok"] else 1)
    assert any(c["id"] == "no-boards" for c in data["checks"])
    code, out, _ = run(capsys, "doctor")
    assert "no boards found" in out and "fix:" in out
    assert out.splitlines()[-1].endswith("problem(s)")
