"""Build the TinyOps installers with one command: ``uv run python packaging/build.py``.

1. PyInstaller, one folder (``packaging/tinyops.spec``): the app without TensorFlow.
2. Linux: ``dist/tinyops_<version>_<arch>.deb`` (app in /opt/tinyops, ``tinyops`` on PATH,
   desktop entry and icon, udev rule; postinst reloads udev and says how serial access is
   granted) and the portable ``dist/tinyops-<version>-linux-<arch>.tar.gz``.
   Windows: the Inno Setup installer (``packaging/windows/tinyops.iss``, if ``iscc`` is on
   PATH). macOS: ``TinyOps.app`` in a DMG (``packaging/macos/make_dmg.sh``).
3. The conversion add-on: the TinyOps wheel (``dist/tinyops-<version>-py3-none-any.whl``);
   installed in a venv with pip it brings TensorFlow, and the app finds it
   (``model_tools.availability.convert_addon``).
4. ``dist/manifest.json``: every artifact with its size (the benchmark reads it).

``--fast``: gzip -1 compression (CI); ``--skip-freeze``: reuse ``build/dist/tinyops``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGING = ROOT / "packaging"
BUILD = ROOT / "build"
DIST = ROOT / "dist"
FROZEN = BUILD / "dist" / "tinyops"
DEB_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}

POSTINST = """#!/bin/sh
set -e
if command -v udevadm >/dev/null 2>&1; then
    udevadm control --reload-rules 2>/dev/null || true
    udevadm trigger --subsystem-match=tty --subsystem-match=usb 2>/dev/null || true
fi
if command -v update-desktop-database >/dev/null 2>&1; then
    update-desktop-database -q /usr/share/applications 2>/dev/null || true
fi
cat <<'MSG'
TinyOps is installed: run `tinyops` (the window) or `tinyops --help` (command line).
Serial access: the udev rule /usr/lib/udev/rules.d/60-tinyops.rules gives the user at the
seat access to known boards (uaccess) and, without logind, the dialout group. Replug a board
that was already connected. Not at the seat (ssh)? Join the group:
    sudo usermod -aG dialout $USER   (then log out and in)
`tinyops doctor` checks ports and permissions; `tinyops features` lists what works here.
MSG
"""

POSTRM = """#!/bin/sh
set -e
if command -v udevadm >/dev/null 2>&1; then
    udevadm control --reload-rules 2>/dev/null || true
fi
"""


def version() -> str:
    try:
        return metadata.version("tinyops")
    except metadata.PackageNotFoundError:
        return "0.1.0"


def run(cmd: list[str], **kw: object) -> None:
    print("+", " ".join(cmd), flush=True)
    subprocess.run(cmd, check=True, **kw)  # type: ignore[call-overload]


def du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() or p.is_file())


def freeze() -> None:
    run([sys.executable, "-m", "PyInstaller", "--noconfirm", "--distpath", str(BUILD / "dist"),
         "--workpath", str(BUILD / "work"), str(PACKAGING / "tinyops.spec")])


def build_deb(ver: str, arch: str, fast: bool) -> Path:
    stage = BUILD / "deb"
    shutil.rmtree(stage, ignore_errors=True)
    opt = stage / "opt" / "tinyops"
    shutil.copytree(FROZEN, opt, symlinks=True)
    (stage / "usr" / "bin").mkdir(parents=True)
    (stage / "usr" / "bin" / "tinyops").symlink_to("/opt/tinyops/tinyops")
    share = stage / "usr" / "share"
    (share / "applications").mkdir(parents=True)
    shutil.copy(PACKAGING / "linux" / "tinyops.desktop", share / "applications")
    icons = share / "icons" / "hicolor" / "scalable" / "apps"
    icons.mkdir(parents=True)
    shutil.copy(PACKAGING / "linux" / "tinyops.svg", icons / "tinyops.svg")
    rules = stage / "usr" / "lib" / "udev" / "rules.d"
    rules.mkdir(parents=True)
    shutil.copy(PACKAGING / "linux" / "60-tinyops.rules", rules)
    debian = stage / "DEBIAN"
    debian.mkdir()
    size_kb = du(stage) // 1024
    (debian / "control").write_text(
        f"Package: tinyops\nVersion: {ver}\nArchitecture: {arch}\n"
        "Maintainer: TinyOps <tinyops@localhost>\nSection: electronics\nPriority: optional\n"
        f"Installed-Size: {size_kb}\n"
        "Depends: libc6 (>= 2.31), libegl1, libgl1, libxkbcommon0, libfontconfig1, libdbus-1-3, "
        "libxkbcommon-x11-0, libxcb-cursor0\n"
        "Recommends: udev\n"
        "Description: TinyML device management (boards, models, flashing, live plots)\n"
        " Detect microcontroller boards, check and export TensorFlow Lite models for TFLite\n"
        " Micro, flash them verified over SMP/MCUmgr, UF2 or esptool, plot live telemetry.\n"
        " Converting Keras models needs the conversion add-on (TensorFlow); see README.\n")
    for name, text in (("postinst", POSTINST), ("postrm", POSTRM)):
        (debian / name).write_text(text)
        (debian / name).chmod(0o755)
    out = DIST / f"tinyops_{ver}_{arch}.deb"
    comp = ["-Zgzip", "-z1"] if fast else ["-Zxz", "-z6"]
    run(["dpkg-deb", "--root-owner-group", *comp, "--build", str(stage), str(out)])
    return out


def build_tar(ver: str, machine: str, fast: bool) -> Path:
    name = f"tinyops-{ver}-linux-{machine}"
    out = DIST / f"{name}.tar.gz"
    with tarfile.open(out, "w:gz", compresslevel=1 if fast else 6) as tar:
        tar.add(FROZEN, arcname=name)
        for extra in ("60-tinyops.rules", "tinyops.desktop", "tinyops.svg", "install-udev.sh"):
            tar.add(PACKAGING / "linux" / extra, arcname=f"{name}/{extra}")
    return out


def build_wheel() -> Path | None:
    uv = shutil.which("uv")
    if uv is None:
        print("note: uv not found: no conversion add-on wheel", file=sys.stderr)
        return None
    run([uv, "build", "--wheel", "--out-dir", str(DIST), str(ROOT)])
    wheels = sorted(DIST.glob("tinyops-*.whl"), key=lambda p: p.stat().st_mtime)
    return wheels[-1] if wheels else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--fast", action="store_true", help="fast compression (CI)")
    ap.add_argument("--skip-freeze", action="store_true", help="reuse build/dist/tinyops")
    ap.add_argument("--no-wheel", action="store_true", help="skip the conversion add-on wheel")
    args = ap.parse_args(argv)
    t0 = time.monotonic()
    DIST.mkdir(exist_ok=True)
    if not (args.skip_freeze and (FROZEN / "tinyops").exists()):
        freeze()
    ver, machine = version(), platform.machine().lower()
    artifacts: dict[str, Path] = {}
    if sys.platform == "linux":
        artifacts["deb"] = build_deb(ver, DEB_ARCH.get(machine, machine), args.fast)
        artifacts["tar.gz"] = build_tar(ver, machine, args.fast)
    elif sys.platform == "darwin":
        run(["sh", str(PACKAGING / "macos" / "make_dmg.sh"), ver])
        artifacts["dmg"] = DIST / f"TinyOps-{ver}.dmg"
    elif sys.platform == "win32" and shutil.which("iscc"):
        run(["iscc", f"/DAppVersion={ver}", f"/DSourceDir={FROZEN}", f"/O{DIST}",
             str(PACKAGING / "windows" / "tinyops.iss")])
        artifacts["exe"] = DIST / f"tinyops-{ver}-setup.exe"
    wheel = None if args.no_wheel else build_wheel()
    if wheel:
        artifacts["addon-wheel"] = wheel
    manifest = {"version": ver, "platform": f"{sys.platform}-{machine}",
                "frozen_bytes": du(FROZEN), "build_s": round(time.monotonic() - t0, 1),
                "artifacts": {k: {"path": str(p), "bytes": p.stat().st_size}
                              for k, p in artifacts.items() if p.exists()}}
    (DIST / "manifest.json").write_text(json.dumps(manifest, indent=2))
    for kind, info in manifest["artifacts"].items():
        print(f"{kind:12} {info['bytes'] / 1e6:8.1f} MB  {info['path']}")
    print(f"app folder   {manifest['frozen_bytes'] / 1e6:8.1f} MB  {FROZEN}")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
