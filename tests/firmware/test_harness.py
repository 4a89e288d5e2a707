"""The firmware harness itself: pinned, hash-checked, and every fixture of issue 10 runs here."""

from __future__ import annotations

import zephyr_fixtures as zephyr

REQUIRED = ["native_sim_serial", "native_sim_serial_fs", "native_sim_serial_buf256",
            "native_sim_serial_buf1024", "native_sim_serial_noparams", "native_sim_shell",
            "native_sim_serial_raw", "native_sim_udp", "qemu_cortex_m0_serial",
            "mps2_an385_serial_recovery_buf1024"]


def test_every_required_fixture_is_in_the_pinned_release() -> None:
    specs = zephyr.manifest()
    missing = [name for name in REQUIRED if name not in specs]
    assert not missing
    assert specs["native_sim_serial"].buf_size == 384
    assert specs["qemu_cortex_m0_serial"].mcuboot
    assert specs["mps2_an385_serial_recovery_buf1024"].serial_recovery


def test_artifacts_match_their_published_digests() -> None:
    folder = zephyr.fixtures_dir()
    sums = zephyr._read_sums(folder / "SHA256SUMS")
    checked = 0
    for name, want in sums.items():
        path = folder / name
        if path.suffix in (".exe", ".hex", ".bin", ".elf") and path.is_file():
            assert zephyr._sha256(path) == want, name
            checked += 1
    assert checked >= len(REQUIRED)


def test_native_sim_and_qemu_start_and_stop(firmware) -> None:
    pty = firmware("native_sim_serial")
    assert pty.port.startswith("/dev/pts/")
    assert pty.proc.poll() is None
    qemu = firmware("qemu_cortex_m0_serial")
    assert qemu.port.startswith("socket://127.0.0.1:")
    udp = firmware("native_sim_udp")
    assert udp.port == "udp://127.0.0.1:1337"
