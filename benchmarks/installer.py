"""The installers and the installed app: sizes, cold start to a visible window, memory.

Reads ``dist/manifest.json`` (``uv run python packaging/build.py``; built here with ``--fast``
when missing), unpacks the ``.deb`` with ``dpkg-deb -x`` and runs THAT app (not the source
tree), in a clean environment:

- ``installer_mb`` / ``installer_tar_mb``: the ``.deb`` / portable ``.tar.gz`` (no TensorFlow).
- ``installer_with_tf_mb``: the ``.deb`` plus what the conversion add-on downloads (the wheels
  of TensorFlow and the packages only it needs, sizes from ``uv.lock`` for this platform).
- ``installed_mb``: the unpacked app folder (target ≤ 400 MB); ``installed_with_tf_mb`` adds
  the add-on's installed TensorFlow packages (measured in this venv).
- ``installed_gui_start_s``: the installed ``tinyops gui`` under Xvfb, spawn to its window
  visible (``xdotool search --onlyvisible``); the first run is the cold one (fresh
  ``TINYOPS_HOME``, app files possibly not in the page cache), the median of the others is
  given beside it. Target ≤ 1.5 s on 2 cores.
- ``installed_rss_mb_idle``: the installed GUI's RSS 5 s after its window showed.
- ``rss_mb_after_quantize``: the GUI's window process after a quantize job of the bundled
  example ended (the job runs in the model worker process; TensorFlow lives there, which the
  installed app does not have, so this runs the source tree), next to its RSS before the job;
  target: back within 20 MB of idle.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import tomllib

from benchmarks.common import (
    ROOT,
    BenchmarkError,
    Figure,
    child_env,
    last_json_line,
    median,
    python,
    rss_mb,
)

DIST = ROOT / "dist"
TF_ROOTS = ("tensorflow",)


def _manifest() -> dict:
    path = DIST / "manifest.json"
    if not path.is_file() or not list(DIST.glob("tinyops_*.deb")):
        subprocess.run([sys.executable, str(ROOT / "packaging" / "build.py"), "--fast",
                        "--no-wheel"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return json.loads(path.read_text())


def _lock() -> dict[str, dict]:
    with open(ROOT / "uv.lock", "rb") as f:
        return {p["name"]: p for p in tomllib.load(f)["package"]}


def _closure(pkgs: dict[str, dict], roots: tuple[str, ...], skip: set[str]) -> set[str]:
    seen: set[str] = set()
    todo = [r for r in roots]
    while todo:
        name = todo.pop()
        if name in seen or name in skip or name not in pkgs:
            continue
        seen.add(name)
        todo += [d["name"] for d in pkgs[name].get("dependencies", [])]
    return seen


def tf_only_packages() -> set[str]:
    """Packages the add-on brings that the app does not already have."""
    pkgs = _lock()
    app_deps = [d["name"] for d in pkgs["tinyops"]["dependencies"] if d["name"] not in TF_ROOTS]
    app = _closure(pkgs, tuple(app_deps), set())
    return _closure(pkgs, TF_ROOTS, app)


def _wheel_bytes(pkg: dict) -> int:
    tag = f"cp{sys.version_info.major}{sys.version_info.minor}"
    arch = platform.machine()
    best = 0
    for wheel in pkg.get("wheels", []):
        name = wheel["url"].rsplit("/", 1)[-1]
        if ("py3-none-any" in name or tag in name) and ("any" in name or arch in name) \
                and ("linux" in name or "any" in name):
            best = max(best, int(wheel.get("size", 0)))
    return best


def addon_download_bytes() -> int:
    pkgs = _lock()
    return sum(_wheel_bytes(pkgs[n]) for n in tf_only_packages())


def addon_installed_bytes() -> int:
    total = 0
    for name in tf_only_packages():
        try:
            files = metadata.distribution(name).files or []
        except metadata.PackageNotFoundError:
            continue
        for f in files:
            path = Path(str(f.locate()))
            if path.is_file():
                total += path.stat().st_size
    return total


def _deb_compression(deb: Path) -> str:
    head = deb.read_bytes()[:4096]
    for member, name in ((b"data.tar.xz", "xz"), (b"data.tar.zst", "zstd"),
                         (b"data.tar.gz", "gzip")):
        if member in head:
            return name
    return "?"


def _du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def _xvfb() -> tuple[subprocess.Popen, str]:
    if not (shutil.which("Xvfb") and shutil.which("xdotool")):
        raise BenchmarkError("Xvfb and xdotool are needed to see the window")
    display = f":{200 + os.getpid() % 300}"
    proc = subprocess.Popen(["Xvfb", display, "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 20
    while subprocess.run(["xdotool", "getdisplaygeometry"], env={"DISPLAY": display},
                         capture_output=True, check=False).returncode != 0:
        if time.monotonic() > deadline:
            proc.kill()
            raise BenchmarkError("Xvfb did not start")
        time.sleep(0.1)
    return proc, display


def _cpu_s(pid: int) -> float | None:
    """User + system CPU seconds of ``pid`` so far (independent of how loaded the machine is)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def _gui_once(app: Path, display: str, home: Path, idle_s: float
              ) -> tuple[float, float | None, float | None]:
    """Seconds from spawn to a visible TinyOps window, the CPU seconds the process used
    until then, and its RSS ``idle_s`` later."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "TINYOPS_HOME": str(home / "t"),
           "DISPLAY": display, "LANG": "C.UTF-8"}
    started = time.monotonic()
    proc = subprocess.Popen([str(app), "gui"], env=env, cwd=home, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while True:
            if subprocess.run(["xdotool", "search", "--onlyvisible", "--name", "^TinyOps"],
                              env={"DISPLAY": display}, capture_output=True,
                              check=False).returncode == 0:
                shown = time.monotonic() - started
                cpu = _cpu_s(proc.pid)
                break
            if proc.poll() is not None or time.monotonic() - started > 90:
                raise BenchmarkError("the installed GUI showed no window")
            time.sleep(0.02)
        time.sleep(idle_s)
        return shown, cpu, rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _quantize_rss() -> dict:
    cmd = [python(), "-m", "benchmarks.installer_child"]
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(cmd, cwd=ROOT, env=child_env(tmp, QT_QPA_PLATFORM="offscreen"),
                              capture_output=True, text=True, timeout=900, check=False)
    if proc.returncode != 0:
        raise BenchmarkError(f"quantize child failed: {proc.stderr.strip()[-300:]}")
    return last_json_line(proc.stdout)


def run(quick: bool) -> list[Figure]:
    man = _manifest()
    arts = man["artifacts"]
    deb = Path(arts["deb"]["path"])
    mb = 1e6
    figs = [
        Figure("installer_mb", round(arts["deb"]["bytes"] / mb, 1), "MB",
               note=f".deb ({_deb_compression(deb)}; build.py without --fast uses xz)"),
        Figure("installer_tar_mb", round(arts["tar.gz"]["bytes"] / mb, 1), "MB",
               note="portable .tar.gz"),
    ]
    addon = addon_download_bytes()
    figs.append(Figure("installer_with_tf_mb", round((arts["deb"]["bytes"] + addon) / mb, 1),
                       "MB", note=f".deb + the conversion add-on's downloads ({addon / mb:.0f} MB "
                       f"of wheels: {', '.join(sorted(tf_only_packages()))[:120]}…)"))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "root"
        subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
        app_dir = root / "opt" / "tinyops"
        installed = _du(app_dir)
        figs.append(Figure("installed_mb", round(installed / mb, 1), "MB", 400, "<=",
                           "issue 18 budget", "the app folder (/opt/tinyops), no TensorFlow"))
        figs.append(Figure("installed_with_tf_mb", round((installed + addon_installed_bytes())
                                                         / mb, 1), "MB",
                           note="+ the add-on's TensorFlow packages as installed"))
        xvfb, display = _xvfb()
        try:
            runs = []
            for i in range(2 if quick else 4):
                home = Path(tmp) / f"home{i}"
                home.mkdir()
                runs.append(_gui_once(app_dir / "tinyops", display, home, 5.0))
        finally:
            xvfb.terminate()
    starts = [s for s, _, _ in runs]
    cpus = [c for _, c, _ in runs if c is not None]
    load = os.getloadavg()[0]
    figs.append(Figure("installed_gui_start_s", round(starts[0], 3), "s", 1.5, "<=",
                       "issue 18 target", f"cold (first) run; warm median "
                       f"{median(starts[1:]):.3f} s; CPU used until the window showed "
                       f"{median(cpus) if cpus else float('nan'):.2f} s (median); load "
                       f"{load:.1f} on {os.cpu_count()} cores",
                       samples=[round(s, 3) for s in starts],
                       extra={"cpu_s": [round(c, 2) for c in cpus]}))
    rss = [r for _, _, r in runs if r is not None]
    figs.append(Figure("installed_rss_mb_idle", round(median(rss), 1) if rss else None, "MB",
                       note="window process, 5 s after the window showed"))
    q = _quantize_rss()
    figs.append(Figure("rss_mb_after_quantize", q["after_mb"], "MB",
                       round(q["idle_mb"] + 20, 1), "<=", "idle + 20 MB",
                       f"window process: idle {q['idle_mb']} MB, after the job "
                       f"{q['after_mb']} MB (job {q['job_s']} s in the model worker)"))
    return figs
