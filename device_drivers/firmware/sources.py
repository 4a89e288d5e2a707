"""The firmware's third-party sources: pinned in ``firmware/manifest.json``, fetched, patched.

Each dependency is looked up as ``<mirror>/<archive>`` in the folder ``TINYOPS_FIRMWARE_MIRROR``
names (checked against the manifest's archive ``sha256``), else downloaded from upstream
(``<upstream>/archive/<commit>.tar.gz``, checked against the manifest's ``tree_sha256``: a digest
of the unpacked paths that does not depend on how the archive was packed). Sources are unpacked
into the firmware cache (never the repository) and TFLM's patches are applied as TFLM's own
download scripts do (``git apply --ignore-space-change --ignore-whitespace``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

from device_drivers.errors import InputError, TinyOpsError

MIRROR_ENV = "TINYOPS_FIRMWARE_MIRROR"
CACHE_ENV = "TINYOPS_FIRMWARE_CACHE"
STAMP = ".tinyops-source.json"


def firmware_dir() -> Path:
    """The repository's ``firmware/`` tree (sources written here, the manifest)."""
    return Path(__file__).resolve().parents[2] / "firmware"


def cache_root() -> Path:
    """Sources, objects and ELFs. ``TINYOPS_FIRMWARE_CACHE`` overrides the platformdirs cache.

    Deliberately not under ``TINYOPS_HOME``: tests give every test its own home, and a build
    must be shared by all of them (and by the next CI run).
    """
    value = os.environ.get(CACHE_ENV)
    root = Path(value).expanduser() if value else Path(
        platformdirs.user_cache_dir("tinyops", appauthor=False)) / "firmware"
    root.mkdir(parents=True, exist_ok=True)
    return root


@dataclass(frozen=True)
class Dependency:
    name: str
    upstream: str
    commit: str
    archive: str
    sha256: str
    tree_sha256: str
    paths: tuple[str, ...]
    license: str
    patches: tuple[tuple[str, str], ...] = field(default=())  # (dependency, path inside it)

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.commit[:12]}"


def load_manifest(path: Path | None = None) -> list[Dependency]:
    path = path or firmware_dir() / "manifest.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the firmware manifest {path}: {exc}") from exc
    return [Dependency(d["name"], d["upstream"], d["commit"], d["archive"], d["sha256"],
                       d["tree_sha256"], tuple(d["paths"]), d["license"],
                       tuple((p["from"], p["path"]) for p in d.get("patches", ())))
            for d in data["dependencies"]]


def tree_digest(root: Path, paths: tuple[str, ...]) -> str:
    """sha256 over the sorted relative paths and each file's sha256 (symlinks by target)."""
    files: list[str] = []
    for p in paths or tuple(sorted(os.listdir(root))):
        base = root / p
        if base.is_file() or base.is_symlink():
            files.append(p)
            continue
        for dp, _dn, fn in os.walk(base):
            files.extend(os.path.relpath(os.path.join(dp, f), root) for f in fn)
    h = hashlib.sha256()
    for rel in sorted(files):
        full = root / rel
        data = (b"link:" + os.readlink(full).encode()) if full.is_symlink() else full.read_bytes()
        h.update(rel.replace(os.sep, "/").encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _unpack(archive: Path, dest: Path, paths: tuple[str, ...]) -> None:
    """Unpack the archive's single top folder's ``paths`` (all when empty) into ``dest``."""
    with tarfile.open(archive) as tar:
        members = []
        for m in tar.getmembers():
            parts = m.name.split("/", 1)
            if len(parts) < 2 or not parts[1]:
                continue
            rel = parts[1]
            if paths and not any(rel == p or rel.startswith(p + "/") for p in paths):
                continue
            m.name = rel
            members.append(m)
        try:
            tar.extractall(dest, members=members, filter="data")
        except TypeError:  # Python without PEP 706's extraction filters
            tar.extractall(dest, members=members)  # the archive is pinned and hash-checked


def _download(dep: Dependency, dest: Path) -> Path:
    url = f"{dep.upstream}/archive/{dep.commit}.tar.gz"
    try:
        with urllib.request.urlopen(url, timeout=60) as r, dest.open("wb") as f:
            shutil.copyfileobj(r, f)
    except OSError as exc:
        raise InputError(
            f"firmware source {dep.name} is not in a mirror and cannot be downloaded ({exc})",
            f"set {MIRROR_ENV} to a folder holding {dep.archive} "
            f"(sha256 {dep.sha256[:12]}…), or allow access to {url}") from exc
    return dest


def _apply_patch(target: Path, patch: Path) -> None:
    cmd = ["git", "apply", "--ignore-space-change", "--ignore-whitespace", str(patch)]
    if shutil.which("git") is None:
        cmd = ["patch", "-p1", "-l", "-i", str(patch)]
    r = subprocess.run(cmd, cwd=target, capture_output=True, text=True)
    if r.returncode != 0:
        raise TinyOpsError(f"cannot apply {patch.name} to {target.name}: "
                           f"{(r.stderr or r.stdout).strip()[:300]}")


def _fetch_one(dep: Dependency, src_root: Path, mirror: Path | None,
               patch_of: Callable[[str], Path]) -> Path:
    final = src_root / dep.dirname
    stamp = final / STAMP
    if stamp.is_file():
        try:
            if json.loads(stamp.read_text()).get("tree_sha256") == dep.tree_sha256:
                return final
        except ValueError:
            pass
    with tempfile.TemporaryDirectory(dir=src_root, prefix=f".{dep.name}-") as tmp:
        tmpdir = Path(tmp)
        candidate = mirror / dep.archive if mirror else None
        if candidate is not None and candidate.is_file():
            got = _sha256_file(candidate)
            if got != dep.sha256:
                raise InputError(f"{candidate} has sha256 {got[:16]}…, the manifest pins "
                                 f"{dep.sha256[:16]}…", "replace the file with the pinned archive")
            archive, origin = candidate, "mirror"
        else:
            archive, origin = _download(dep, tmpdir / dep.archive), "upstream"
        unpacked = tmpdir / "src"
        unpacked.mkdir()
        _unpack(archive, unpacked, dep.paths)
        digest = tree_digest(unpacked, dep.paths)
        if digest != dep.tree_sha256:
            raise InputError(f"{dep.name} from {origin} does not match the manifest's tree "
                             f"digest ({digest[:16]}… vs {dep.tree_sha256[:16]}…)",
                             "the archive is not the pinned commit's sources")
        for owner, rel in dep.patches:
            _apply_patch(unpacked, patch_of(owner) / rel)
        (unpacked / STAMP).write_text(json.dumps(
            {"commit": dep.commit, "tree_sha256": dep.tree_sha256, "origin": origin,
             "patches": [p for _, p in dep.patches]}))
        if final.exists():
            shutil.rmtree(final)
        unpacked.rename(final)
    return final


def fetch_sources(deps: list[Dependency] | None = None) -> dict[str, Path]:
    """Every dependency unpacked (and patched) in the cache: name -> its folder."""
    deps = deps if deps is not None else load_manifest()
    src_root = cache_root() / "src"
    src_root.mkdir(parents=True, exist_ok=True)
    mirror_value = os.environ.get(MIRROR_ENV)
    mirror = Path(mirror_value).expanduser() if mirror_value else None
    if mirror is not None and not mirror.is_dir():
        raise InputError(f"{MIRROR_ENV}={mirror_value} is not a folder",
                         "point it at the folder holding the firmware's source archives")
    out: dict[str, Path] = {}
    # Patch owners first (TFLM carries the patches of the others).
    for dep in sorted(deps, key=lambda d: not any(d.name == o for x in deps
                                                  for o, _ in x.patches)):
        out[dep.name] = _fetch_one(dep, src_root, mirror, lambda owner: out[owner])
    return out
