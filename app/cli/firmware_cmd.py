"""``tinyops firmware build|run``: the TinyOps runtime firmware, built with TFLM and run in QEMU."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
import time

CPU_CHOICES = ("cortex-m3", "cortex-m4", "cortex-m55")


def register(subparsers: argparse._SubParsersAction) -> None:
    fw = subparsers.add_parser(
        "firmware", help="build the TinyOps runtime firmware (TFLM + CMSIS-NN) and run it in QEMU",
        description="Build the runtime firmware in firmware/ with Debian's arm-none-eabi-gcc "
                    "(sources pinned in firmware/manifest.json, taken from the folder "
                    "$TINYOPS_FIRMWARE_MIRROR names, else downloaded; cached by the hash of "
                    "all inputs), and run it as a board on a QEMU mps2 machine.")
    sub = fw.add_subparsers(dest="firmware_command", metavar="ACTION", required=True)

    b = sub.add_parser("build", help="build (or find in the cache) the firmware ELF")
    b.add_argument("--cpu", choices=CPU_CHOICES, default="cortex-m4",
                   help="target core: cortex-m3 (mps2-an385), cortex-m4 (mps2-an386, hard "
                        "float); cortex-m55 is not built yet (default: cortex-m4)")
    _common(b)
    b.set_defaults(func=cmd_build)

    r = sub.add_parser("run", help="run the firmware on a QEMU machine, UART on a TCP port")
    r.add_argument("--machine", choices=("mps2-an385", "mps2-an386"), default="mps2-an386",
                   help="QEMU machine: mps2-an385 (Cortex-M3) or mps2-an386 (Cortex-M4F)")
    r.add_argument("--state", metavar="DIR", default=None,
                   help="folder for the board's storage (models survive resets and restarts; "
                        "default: one per machine in the TinyOps data folder)")
    r.add_argument("--tcp", type=int, metavar="PORT", default=0,
                   help="serial TCP port on 127.0.0.1 (default: any free port)")
    _common(r)
    r.set_defaults(func=cmd_run)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--kernels", choices=("reference", "cmsis-nn"), default="cmsis-nn",
                   help="TFLM kernels: TFLM's reference kernels or Arm's CMSIS-NN "
                        "(default: cmsis-nn)")
    p.add_argument("--app", choices=("runtime", "selftest"), default="runtime",
                   help=argparse.SUPPRESS)  # selftest: the port + glue check of the tests
    p.add_argument("--jobs", type=int, default=2, help="parallel compile jobs (default: 2)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _progress(args: argparse.Namespace):
    if args.json:
        return None
    last = {"t": 0.0}

    def show(fraction: float, message: str) -> None:
        now = time.monotonic()
        if now - last["t"] > 2.0 or fraction >= 1.0:
            last["t"] = now
            print(f"  {message}", file=sys.stderr, flush=True)
    return show


def _build(args: argparse.Namespace, cpu: str):
    from device_drivers.firmware.build import build

    return build(cpu, args.kernels, args.app, jobs=args.jobs, progress=_progress(args))


def cmd_build(args: argparse.Namespace) -> int:
    result = _build(args, args.cpu)
    if args.json:
        print(json.dumps({"ok": True, **result.to_json()}))
        return 0
    s = result.sizes
    print(f"{result.elf}")
    print(f"  {result.cpu} ({result.machine}), {result.kernels} kernels, "
          f"{'cached' if result.cached else f'compiled {result.compiled}/{result.objects}'} "
          f"in {result.seconds:.1f} s")
    print(f"  text {s['text']} B, data {s['data']} B, bss {s['bss']} B "
          f"(+ {s['model_and_arena_buffers']} B model/arena buffers in PSRAM)")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from device_drivers import paths
    from device_drivers.firmware import qemu

    result = _build(args, qemu.cpu_of(args.machine))
    state = args.state or str(paths.data_dir() / "firmware-state" / args.machine)
    stop = {"requested": False}

    def on_sigterm(_signum: int, _frame: object) -> None:
        stop["requested"] = True

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if in_main:
        signal.signal(signal.SIGTERM, on_sigterm)
    board = qemu.start(result.elf, args.machine, state, tcp_port=args.tcp)
    try:
        info = {"port": board.port, "machine": args.machine, "cpu": result.cpu,
                "kernels": result.kernels, "elf": result.elf, "state": str(board.state),
                "pid": board.proc.pid, "virtual": False, "emulated": True}
        if args.json:
            print(json.dumps(info), flush=True)
        else:
            print(f"TinyOps firmware on QEMU {args.machine} ({result.cpu}, {result.kernels}) "
                  f"on {board.port}")
            print(f"  storage: {board.state}   log: {board.log}")
            print(f"  try:   tinyops info --port {board.port}      (Ctrl-C stops it)", flush=True)
        while not stop["requested"]:
            if board.proc.poll() is not None:
                print(f"QEMU exited ({board.proc.returncode}): {board.log_text()[-300:]}",
                      file=sys.stderr)
                return 1
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        board.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return 0


def analyze_target(result: dict, model: str, cpu: str, kernels: str, limits: object) -> None:
    """``analyze --target``: add the firmware's own arena figure; with a board, the fit verdict
    is made on it (the host figure is the 64-bit host ABI's)."""
    from device_drivers.firmware.probe import target_arena
    from model_tools.analyze import fit_verdict

    path = (result.get("converted") and None) or model
    target = target_arena(path, cpu, kernels)
    target["host_arena_bytes"] = result.get("arena_bytes")
    if target["arena_used"] is not None and result.get("arena_bytes"):
        target["host_minus_target"] = result["arena_bytes"] - target["arena_used"]
    result["target"] = target
    if limits is not None and target["arena_used"] is not None:
        fit = fit_verdict(result["flash_bytes"], target["arena_used"], limits)
        fit["arena_source"] = f"target ({cpu}, {kernels})"
        result["fit"] = fit
