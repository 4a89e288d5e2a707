"""The TinyOps firmware (firmware/, TFLM + CMSIS-NN in QEMU): build time, and uploads to it.

- ``tfw_build_cold_s``: ``build("cortex-m4", "cmsis-nn")`` into an empty object cache (the
  unpacked sources are reused: unpacking is not compiling). Skipped with ``--quick``: it
  takes minutes on 2 shared cores.
- ``tfw_build_cached_s``: the same build again: hashing the inputs, no compiler run.
- ``tfw_upload_vs_smpclient``: a 64 kB file to the firmware on QEMU mps2-an386. TinyOps: open,
  measure frames, upload, device sha256. smpclient: its ``upload_file`` with each
  fragmentation strategy on a fresh board; the fastest whose file the device hashes right is
  the peer. Ratio = TinyOps ÷ peer (≤ 1: no slower). QEMU is not cycle-accurate: these are
  emulator figures, not a device's.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import BenchmarkError, Figure, best_strategy, vs_smpclient

SIZE = 64 * 1024


def _cold_build() -> Figure:
    from device_drivers.firmware import build as fwbuild
    from device_drivers.firmware.sources import CACHE_ENV, cache_root

    src = cache_root() / "src"
    with tempfile.TemporaryDirectory(prefix="tinyops-fw-cold-") as tmp:
        if src.is_dir():
            shutil.copytree(src, Path(tmp) / "src", symlinks=True)
        old = os.environ.get(CACHE_ENV)
        os.environ[CACHE_ENV] = tmp
        try:
            result = fwbuild.build("cortex-m4", "cmsis-nn", "runtime", jobs=2)
        finally:
            if old is None:
                os.environ.pop(CACHE_ENV, None)
            else:
                os.environ[CACHE_ENV] = old
    return Figure("tfw_build_cold_s", result.seconds, "s", None, "",
                  note=f"{result.compiled} objects, 2 jobs, cortex-m4 + cmsis-nn, "
                       f"text {result.sizes['text']} B", extra=result.to_json())


def _cached_build() -> Figure:
    from device_drivers.firmware import build as fwbuild

    fwbuild.build("cortex-m4", "cmsis-nn", "runtime")  # make sure it is there
    result = fwbuild.build("cortex-m4", "cmsis-nn", "runtime")
    if not result.cached:
        raise BenchmarkError("the second build was not cached")
    return Figure("tfw_build_cached_s", result.seconds, "s", 5.0, "<=",
                  note="second build: hash the inputs, find the ELF")


def _tinyops_upload(port: str, data: bytes) -> float:
    from device_drivers.link import DeviceSession

    started = time.perf_counter()
    with DeviceSession.open(port, timeout_s=5.0) as dev:
        result = dev.upload_file(data, "/lfs/bench.bin")
    if not result.verified:
        raise BenchmarkError("TinyOps upload not verified")
    return time.perf_counter() - started


async def _smpclient_upload(port: str, data: bytes, strategy: Any) -> float:
    from smpclient import SMPClient
    from smpclient.requests import file_management as fsreq

    from benchmarks.firmware import _socket_transport

    started = time.perf_counter()
    client = SMPClient(_socket_transport(strategy), port)
    await client.connect()
    try:
        async for _ in client.upload_file(data, "/lfs/bench.bin", timeout_s=5.0):
            pass
        digest = await client.request(fsreq.FileHashChecksum(name="/lfs/bench.bin",
                                                             type="sha256"), timeout_s=10.0)
        if bytes(digest.output) != hashlib.sha256(data).digest():
            raise BenchmarkError("smpclient's file hash differs")
    finally:
        await client.disconnect()
    return time.perf_counter() - started


def _upload(repeats: int) -> Figure:
    from smpclient.transport.serial import Auto, BufferParams

    from device_drivers.firmware import build as fwbuild
    from device_drivers.firmware import qemu

    elf = fwbuild.build("cortex-m4", "cmsis-nn", "runtime").elf
    ours, theirs, tried = [], [], {}
    peer = ""
    for run in range(repeats):
        data = hashlib.shake_256(b"tinyops-fw%d" % run).digest(SIZE)
        with tempfile.TemporaryDirectory() as tmp, qemu.start(elf, "mps2-an386", tmp) as b:
            ours.append(_tinyops_upload(b.port, data))

        def timed(strategy: Any, data: bytes = data) -> float:
            with tempfile.TemporaryDirectory() as tmp, qemu.start(elf, "mps2-an386", tmp) as b:
                return asyncio.run(asyncio.wait_for(
                    _smpclient_upload(b.port, data, strategy), 300))

        seconds, peer, tried = best_strategy(
            (("BufferParams(128, 2)", BufferParams(128, 2)),
             ("BufferParams(128, 8)", BufferParams(128, 8)), ("Auto", Auto())), timed)
        theirs.append(seconds)
    return vs_smpclient("tfw_upload_vs_smpclient", ours, theirs,
                        f"smpclient {peer} on the TinyOps firmware (QEMU mps2-an386)",
                        f"{SIZE} B file incl. open and device sha256 (emulated)", tried)


def run(quick: bool) -> list[Figure]:
    figures = [] if quick else [_cold_build()]
    figures += [_cached_build(), _upload(1 if quick else 3)]
    return figures
