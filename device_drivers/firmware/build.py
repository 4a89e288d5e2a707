"""Build the TinyOps firmware with Debian's arm-none-eabi-gcc: one call, cached by its inputs.

Objects are cached by the hash of (compiler, flags, source bytes, the headers they can see:
the pinned dependencies' tree digests and our own headers), the ELF by the hash of all its
objects, the link flags and the linker scripts; a second build compiles nothing. Only the
kernels of the operators in ``firmware/tflm/ops.def`` are compiled.
"""

from __future__ import annotations

import concurrent.futures as cf
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from device_drivers.errors import Cancelled, InputError, TinyOpsError
from device_drivers.firmware.sources import cache_root, fetch_sources, firmware_dir, load_manifest

CPUS: dict[str, dict[str, Any]] = {
    "cortex-m3": {"machine": "mps2-an385", "define": "TINYOPS_MACHINE_AN385", "ld": "mps2.ld",
                  "flags": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]},
    "cortex-m4": {"machine": "mps2-an386", "define": "TINYOPS_MACHINE_AN386", "ld": "mps2.ld",
                  "flags": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard",
                            "-mfpu=fpv4-sp-d16"]},
}
PLANNED_CPUS = {"cortex-m55": "mps3-an547"}  # accepted by the CLI, not built yet
KERNELS = ("reference", "cmsis-nn")
APPS = ("runtime", "selftest")
MODEL_CAPACITY = 2 * 1024 * 1024
ARENA_SIZE = 2 * 1024 * 1024
INSTALL_HINT = ("install Debian's gcc-arm-none-eabi libnewlib-arm-none-eabi "
                "libstdc++-arm-none-eabi-newlib (apt-get install …)")
# TFLM files replaced by the port (its hooks) or only used by TFLM's own tests.
TFLM_SKIP = {"debug_log.cc", "micro_time.cc", "system_setup.cc", "test_helpers.cc",
             "test_helper_custom_ops.cc", "mock_micro_graph.cc", "fake_micro_context.cc"}

Progress = Callable[[float, str], None]


@dataclass
class BuildResult:
    elf: str
    cpu: str
    kernels: str
    app: str
    machine: str
    cached: bool
    seconds: float
    compiled: int
    objects: int
    sizes: dict[str, int]
    dependencies: dict[str, str]
    ops: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def op_set(ops_def: Path | None = None) -> list[tuple[str, str, list[str]]]:
    """``firmware/tflm/ops.def`` as (BUILTIN, resolver method, kernel source stems)."""
    text = (ops_def or firmware_dir() / "tflm" / "ops.def").read_text()
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    return [(m[1], m[2], m[3].split())
            for m in re.finditer(r"^TINYOPS_OP\((\w+),\s*(\w+),\s*([\w ]+)\)", text, re.M)]


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise InputError(f"{name} is not installed", INSTALL_HINT)
    return path


def _check_toolchain(gcc: str) -> str:
    specs = subprocess.run([gcc, "-print-file-name=nano.specs"], capture_output=True,
                           text=True).stdout.strip()
    if not os.path.isabs(specs):
        raise InputError("newlib for arm-none-eabi is not installed (no nano.specs)",
                         INSTALL_HINT)
    return subprocess.run([gcc, "--version"], capture_output=True,
                          text=True).stdout.splitlines()[0]


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p.encode() if isinstance(p, str) else p)
        h.update(b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class Unit:
    source: Path
    flags: tuple[str, ...]


def _plan(cpu: str, kernels: str, app: str, src: dict[str, Path]) -> tuple[list[Unit], list[str]]:
    fw = firmware_dir()
    tflm = src["tflite-micro"]
    micro = tflm / "tensorflow/lite/micro"
    cmsis_nn = kernels == "cmsis-nn"
    spec = CPUS[cpu]
    common = [*spec["flags"], "-O2", "-ffunction-sections", "-fdata-sections",
              "-DTF_LITE_STATIC_MEMORY", "-DFLATBUFFERS_LOCALE_INDEPENDENT=0",
              "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0"]
    if cmsis_nn:
        common.append("-DCMSIS_NN")
    includes = [f"-I{p}" for p in (tflm, src["flatbuffers"] / "include", src["gemmlowp"],
                                   src["ruy"], src["cmsis-nn"], src["cmsis-nn"] / "Include",
                                   src["cmsis-6"] / "CMSIS/Core/Include",
                                   fw / "include", fw / "tflm", fw / "port/qemu_mps",
                                   fw / "core")]
    cxx = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics",
           "-fno-unwind-tables", "-fno-asynchronous-unwind-tables"]
    third_cxx = tuple([*common, *cxx, "-w", *includes])
    third_c = tuple([*common, "-std=gnu11", "-w", *includes])
    ours = [*common, "-Wall", "-Wextra", "-Wno-unused-parameter", f"-D{spec['define']}",
            '-DTINYOPS_BIG_SECTION=".tinyops_big"', f"-DTINYOPS_MODEL_CAPACITY={MODEL_CAPACITY}",
            f"-DTINYOPS_ARENA_SIZE={ARENA_SIZE}",
            f'-DTINYOPS_TFLM_COMMIT="{tflm.name.rsplit("-", 1)[1][:8]}"',
            f'-DTINYOPS_KERNELS="{kernels}"', *includes]
    own_cxx, own_c = tuple([*ours, *cxx]), tuple([*ours, "-std=gnu11"])

    units: list[Unit] = []
    core_dirs = [micro, micro / "arena_allocator", micro / "memory_planner",
                 micro / "tflite_bridge"]
    for d in core_dirs:
        units += [Unit(p, third_cxx) for p in sorted(d.glob("*.cc"))
                  if not p.name.endswith("_test.cc") and p.name not in TFLM_SKIP]
    for rel in ("tensorflow/lite/kernels/kernel_util.cc",
                "tensorflow/lite/kernels/internal/runtime_shape.cc",
                "tensorflow/lite/kernels/internal/portable_tensor_utils.cc",
                "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
                "tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc",
                "tensorflow/lite/kernels/internal/common.cc",
                "tensorflow/lite/kernels/internal/quantization_util.cc",
                "tensorflow/lite/kernels/internal/tensor_utils.cc",
                "tensorflow/lite/core/api/flatbuffer_conversions.cc",
                "tensorflow/lite/core/api/tensor_utils.cc",
                "tensorflow/lite/core/c/common.cc",
                "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
                "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc"):
        units.append(Unit(tflm / rel, third_cxx))
    stems = ["kernel_util", "micro_tensor_utils"]
    for _name, _method, kernel_srcs in op_set():
        stems += [s for s in kernel_srcs if s not in stems]
    for stem in stems:
        opt = micro / "kernels/cmsis_nn" / f"{stem}.cc"
        units.append(Unit(opt if cmsis_nn and opt.is_file() else micro / "kernels" / f"{stem}.cc",
                          third_cxx))
    if cmsis_nn:
        units += [Unit(p, third_c) for p in sorted((src["cmsis-nn"] / "Source").rglob("*.c"))
                  if not re.search(r"_f(16|32)\.c$|arm_nntables_flt\.c$", p.name)]
    own = sorted((fw / "tflm").glob("*.cc")) + sorted((fw / "port/qemu_mps").glob("*.c*"))
    if app == "runtime":
        own = [p for p in own if p.name != "selftest_main.c"]
        own += sorted((fw / "core").rglob("*.c"))
        if not (fw / "core/main.c").is_file():
            raise InputError("the runtime's core (firmware/core/main.c) is not there yet",
                             "build the port self-test with --app selftest")
    else:
        own = [p for p in own if p.suffix in (".c", ".cc")]
    units += [Unit(p, own_cxx if p.suffix == ".cc" else own_c) for p in own]
    link = [*spec["flags"], "-Wl,--gc-sections", "--specs=nano.specs", "-nostartfiles",
            f"-L{fw / 'port/qemu_mps'}", f"-T{fw / 'port/qemu_mps' / spec['ld']}"]
    return units, link


def _headers_digest(own: bool) -> str:
    """What a source can include besides itself: the pinned dependencies (their manifest
    entries, patches included), and for our own sources every header under firmware/."""
    fw = firmware_dir()
    parts = [(fw / "manifest.json").read_bytes()]
    if own:
        for p in sorted(fw.rglob("*")):
            if p.suffix in (".h", ".def") and p.is_file():
                parts += [str(p.relative_to(fw)).encode(), p.read_bytes()]
    return _sha(*parts)


def _compile(gcc: str, gxx: str, unit: Unit, obj: Path) -> None:
    tool = gxx if unit.source.suffix == ".cc" else gcc
    tmp = obj.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run([tool, *unit.flags, "-c", str(unit.source), "-o", str(tmp)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise TinyOpsError(f"compiling {unit.source.name} failed:\n{r.stderr.strip()[-3000:]}")
    tmp.replace(obj)


def _sizes(elf: Path) -> dict[str, int]:
    out = subprocess.run([_tool("arm-none-eabi-size"), "-A", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    sec = {m[1]: int(m[2]) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.M)}
    return {"text": sum(v for k, v in sec.items() if k == ".text" or k.startswith(".ARM")),
            "data": sec.get(".data", 0), "bss": sec.get(".bss", 0),
            "model_and_arena_buffers": sec.get(".tinyops_big", 0), "heap": sec.get(".heap", 0)}


def build(cpu: str = "cortex-m4", kernels: str = "cmsis-nn", app: str = "runtime", *,
          jobs: int = 2, progress: Progress | None = None, cancel: Any = None) -> BuildResult:
    """Build (or find in the cache) the firmware ELF for ``cpu`` with ``kernels``."""
    if cpu in PLANNED_CPUS:
        raise InputError(f"{cpu} ({PLANNED_CPUS[cpu]}) is not supported by this build yet",
                         f"use one of {', '.join(CPUS)}")
    if cpu not in CPUS:
        raise InputError(f"unknown CPU {cpu!r}", f"use one of {', '.join(CPUS)}")
    if kernels not in KERNELS:
        raise InputError(f"unknown kernels {kernels!r}", f"use one of {', '.join(KERNELS)}")
    if app not in APPS:
        raise InputError(f"unknown firmware app {app!r}", f"use one of {', '.join(APPS)}")
    t0 = time.perf_counter()
    report = progress or (lambda f, m: None)
    gcc, gxx = _tool("arm-none-eabi-gcc"), _tool("arm-none-eabi-g++")
    version = _check_toolchain(gcc)
    deps = load_manifest()
    report(0.0, "sources")
    src = fetch_sources(deps)
    units, link = _plan(cpu, kernels, app, src)
    third_party, own = _headers_digest(False), _headers_digest(True)
    fw_root = str(firmware_dir())
    obj_dir = cache_root() / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    keyed = []
    for u in units:
        headers = own if str(u.source).startswith(fw_root) else third_party
        key = _sha(version, " ".join(u.flags), u.source.name, u.source.read_bytes(), headers)
        keyed.append((u, obj_dir / key[:2] / f"{key}.o", key))
    ld = firmware_dir() / "port/qemu_mps"
    elf_key = _sha(version, " ".join(link), *(k for _, _, k in keyed),
                   *((ld / n).read_bytes() for n in ("common.ld", CPUS[cpu]["ld"])))
    out_dir = cache_root() / "elf" / f"{app}-{cpu}-{kernels}-{elf_key[:16]}"
    elf = out_dir / "tinyops-fw.elf"
    dep_commits = {d.name: d.commit for d in deps}
    ops = [name for name, _, _ in op_set()]
    if elf.is_file():
        return BuildResult(str(elf), cpu, kernels, app, CPUS[cpu]["machine"], True,
                           round(time.perf_counter() - t0, 3), 0, len(keyed), _sizes(elf),
                           dep_commits, ops)
    todo = [(u, o) for u, o, _ in keyed if not o.is_file()]
    done = 0
    with cf.ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = []
        for u, o in todo:
            o.parent.mkdir(parents=True, exist_ok=True)
            futures.append(pool.submit(_compile, gcc, gxx, u, o))
        try:
            for fut in cf.as_completed(futures):
                fut.result()
                done += 1
                report(done / max(1, len(todo)), f"compiled {done}/{len(todo)}")
                if cancel is not None and cancel.is_set():
                    raise Cancelled()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"tinyops-fw.{os.getpid()}.tmp"
    r = subprocess.run([gxx, *link, "-o", str(tmp), *(str(o) for _, o, _ in keyed),
                        "-lm",
                        f"-Wl,-Map={out_dir / 'tinyops-fw.map'}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise TinyOpsError(f"linking the firmware failed:\n{r.stderr.strip()[-3000:]}")
    tmp.replace(elf)
    result = BuildResult(str(elf), cpu, kernels, app, CPUS[cpu]["machine"], False,
                         round(time.perf_counter() - t0, 3), len(todo), len(keyed),
                         _sizes(elf), dep_commits, ops)
    (out_dir / "build.json").write_text(json.dumps(result.to_json(), indent=2))
    return result
