"""`tinyops doctor` checks, run against fake host roots (group file, /proc, udev dirs)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from device_drivers import paths
from device_drivers.boards import DetectedBoard, DoctorEnv, get_board, run_doctor
from device_drivers.boards.detect import Candidate


def env(tmp_path: Path, *, groups: str = "dialout:x:20:\n", gids: set[int] | None = None,
        user: str = "alice", udev: bool = False, access: bool = True,
        procs: dict[int, str] | None = None) -> DoctorEnv:
    (tmp_path / "group").write_text(groups)
    proc = tmp_path / "proc"
    proc.mkdir(exist_ok=True)
    for pid, name in (procs or {}).items():
        (proc / str(pid) / "fd").mkdir(parents=True, exist_ok=True)
        (proc / str(pid) / "comm").write_text(name + "\n")
    rules = tmp_path / "rules.d"
    rules.mkdir(exist_ok=True)
    if udev:
        (rules / "60-tinyops.rules").write_text("# rule\n")
    return DoctorEnv(platform="linux", proc_root=str(proc), group_file=str(tmp_path / "group"),
                     udev_dirs=(str(rules),), access=lambda p, m: access, user=user,
                     active_gids=lambda: gids or {1000}, is_root=False,
                     load_library=lambda soname: True)


def found(port: str, board_id: str | None, mode: str = "app", serial: str | None = "S1",
          vid: int = 0x2341) -> DetectedBoard:
    cands = [Candidate(get_board(board_id), 0.9, mode, "test")] if board_id else []
    if board_id == "bridge_cp210x":
        cands.append(Candidate(get_board("esp32_devkitc"), 0.3, mode, "test"))
    return DetectedBoard(port=port, source="serial", candidates=cands, mode=mode,
                         serial_number=serial, vid=vid)


def by_id(report) -> dict[str, list]:
    out: dict[str, list] = {}
    for check in report.checks:
        out.setdefault(check.id, []).append(check)
    return out


def test_healthy_setup_is_all_ok(tmp_path: Path, pty_path: str) -> None:
    report = run_doctor([found(pty_path, "nano33ble")],
                        env(tmp_path, gids={20}, udev=True))
    assert report.ok
    assert {c.status for c in report.checks} == {"ok"}
    assert "nano33ble" not in report.checks[-1].message  # names, not ids
    assert "Arduino Nano 33 BLE" in report.checks[-1].message


def test_not_in_dialout_gives_the_exact_command(tmp_path: Path) -> None:
    checks = by_id(run_doctor([], env(tmp_path)))
    group = checks["serial-group"][0]
    assert group.status == "warn"
    assert group.fix == "sudo usermod -aG dialout $USER, then log out and in"


def test_added_to_group_but_not_relogged(tmp_path: Path) -> None:
    checks = by_id(run_doctor([], env(tmp_path, groups="uucp:x:14:bob,alice\n")))
    assert "log out and back in" in checks["serial-group"][0].fix
    assert "uucp" in checks["serial-group"][0].fix


def test_missing_udev_rule_points_to_the_shipped_file(tmp_path: Path) -> None:
    checks = by_id(run_doctor([], env(tmp_path)))
    fix = checks["udev-rule"][0].fix
    assert "60-tinyops.rules" in fix and "udevadm control --reload-rules" in fix
    shipped = fix.split()[2]
    assert Path(shipped).is_file()


def test_permission_denied_port_fails(tmp_path: Path, pty_path: str) -> None:
    report = run_doctor([found(pty_path, "pico")], env(tmp_path, access=False))
    assert not report.ok
    perm = by_id(report)["permission"][0]
    assert perm.status == "fail" and perm.port == pty_path and perm.fix


def test_busy_port_names_the_owner(tmp_path: Path, pty_path: str) -> None:
    holder = subprocess.Popen([sys.executable, "-c",
                               "import sys,time; f=open(sys.argv[1],'rb',buffering=0); "
                               "print('ok',flush=True); time.sleep(30)", pty_path],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ok"
        doctor_env = env(tmp_path, gids={20}, udev=True)
        doctor_env.proc_root = "/proc"
        busy = by_id(run_doctor([found(pty_path, "nano33ble")], doctor_env))["busy"][0]
        assert f"pid {holder.pid}" in busy.message and busy.status == "warn"
    finally:
        holder.kill()
        holder.wait()


def test_bootloader_mode_says_how_to_get_back(tmp_path: Path, pty_path: str) -> None:
    report = run_doctor([found(pty_path, "nano33ble", mode="bootloader")],
                        env(tmp_path, gids={20}, udev=True))
    boot = by_id(report)["bootloader"][0]
    assert boot.status == "warn" and boot.fix == get_board("nano33ble").recovery
    assert "press reset once" in boot.fix


def test_uf2_drive_is_reported_as_waiting_in_bootloader(tmp_path: Path) -> None:
    drive = DetectedBoard(port="/media/a/RPI-RP2", source="uf2", mode="bootloader",
                          candidates=[Candidate(get_board("pico"), 0.6, "bootloader", "t")])
    boot = by_id(run_doctor([drive], env(tmp_path, gids={20}, udev=True)))["bootloader"][0]
    assert "BOOTSEL" in boot.fix


def test_unknown_bridge_and_unknown_device(tmp_path: Path, pty_path: str) -> None:
    report = run_doctor([found(pty_path, "bridge_cp210x", mode="unknown", serial="0001"),
                         found(pty_path, None, vid=0x1234)],
                        env(tmp_path, gids={20}, udev=True))
    checks = by_id(report)
    bridge = checks["unknown-bridge"][0]
    assert "esp32_devkitc" in bridge.message
    assert "tinyops boards alias 0001 NAME" in bridge.fix
    assert "--probe" in checks["unknown-device"][0].fix


def test_vanished_port_fails(tmp_path: Path) -> None:
    report = run_doctor([found("/dev/ttyGONE9", "pico")], env(tmp_path, gids={20}, udev=True))
    assert by_id(report)["port-exists"][0].status == "fail" and not report.ok


def test_interfering_services(tmp_path: Path, pty_path: str) -> None:
    doctor_env = env(tmp_path, gids={20}, udev=True, procs={300: "ModemManager", 301: "brltty"})
    report = run_doctor([found(pty_path, "bridge_ch340", vid=0x1A86)], doctor_env)
    checks = by_id(report)
    assert checks["modemmanager"][0].status == "warn"
    assert checks["brltty"][0].status == "fail" and "apt remove brltty" in checks["brltty"][0].fix


def test_broken_user_board_file_and_stale_virtual_board(tmp_path: Path) -> None:
    folder = paths.config_dir() / "boards"
    folder.mkdir(parents=True)
    (folder / "bad.json").write_text("{")
    (paths.virtual_boards_dir() / "1.json").write_text(json.dumps(
        {"port": "/dev/pts/424242", "board": "virtual", "pid": 999999999, "virtual": True}))
    checks = by_id(run_doctor([], env(tmp_path, gids={20}, udev=True)))
    assert checks["registry"][0].status == "fail" and "bad.json" in checks["registry"][0].message
    assert "stale" in checks["virtual-stale"][0].message
    assert checks["no-boards"][0].status == "warn"


def test_report_json_shape(tmp_path: Path, pty_path: str) -> None:
    report = run_doctor([found(pty_path, "pico")], env(tmp_path, access=False))
    data = json.loads(json.dumps(report.to_dict()))
    assert data["ok"] is False and data["counts"]["fail"] >= 1
    assert {"id", "status", "message", "fix", "port"} <= set(data["checks"][0])


def test_missing_gui_libraries_are_named_with_their_package(tmp_path) -> None:
    from device_drivers.boards.doctor import DoctorEnv as Env
    from device_drivers.boards.doctor import run_doctor

    env = Env(platform="linux", proc_root=str(tmp_path), group_file=str(tmp_path / "g"),
              udev_dirs=(), access=lambda p, m: True, user="u", active_gids=lambda: {1},
              is_root=True,
              load_library=lambda so: so not in ("libxcb-icccm.so.4", "libxcb-keysyms.so.1"))
    report = run_doctor([], env, virtual_dir=str(tmp_path))
    gui = [c for c in report.checks if c.id == "gui-libraries"]
    assert len(gui) == 1 and gui[0].status == "warn"
    assert "libxcb-icccm.so.4" in gui[0].message and "libxcb-keysyms.so.1" in gui[0].message
    assert gui[0].fix.startswith("sudo apt-get install libxcb-icccm4 libxcb-keysyms1")
