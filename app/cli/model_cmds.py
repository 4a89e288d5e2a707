"""``tinyops analyze``, ``quantize`` and ``export``: model_tools on the command line.

This module is where models meet boards: model_tools takes board limits as plain numbers
and this layer looks them up in the registry (``device_drivers.boards``).
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from pathlib import Path
from typing import Any

from model_tools.errors import ModelInputError


def register(sub: argparse._SubParsersAction) -> None:
    an = sub.add_parser("analyze", help="what a model needs on a microcontroller (and if it fits)")
    an.add_argument("model", help=".tflite, .keras, .h5 or SavedModel folder")
    an.add_argument("--board", metavar="ID", help="board id from the registry: fit verdict")
    an.add_argument("--no-measure", action="store_true",
                    help="skip the arena measurement (static estimate only)")
    an.add_argument("--layers", action="store_true",
                    help="per-layer report: MACs, parameters, activation bytes (and with "
                         "--compare/--calib the int8-vs-float error of each layer)")
    an.add_argument("--compare", metavar="INT8.tflite",
                    help="with --layers: the quantized model of MODEL (a float source)")
    an.add_argument("--calib", metavar="DATA", help="with --compare: the calibration samples")
    an.add_argument("--target", metavar="CPU", choices=("cortex-m3", "cortex-m4"),
                    help="also measure the arena on that core: the TinyOps firmware loads the "
                         "model in QEMU and reports TFLM's arena_used_bytes(); with --board the "
                         "fit verdict uses this figure")
    an.add_argument("--kernels", choices=("reference", "cmsis-nn"), default="cmsis-nn",
                    help="with --target: the firmware's kernels (default: cmsis-nn)")
    an.add_argument("--json", action="store_true", help="print one JSON object")
    an.set_defaults(func=cmd_analyze)

    qu = sub.add_parser("quantize", help="quantize a float model for TFLite Micro")
    qu.add_argument("model", help=".keras, .h5 or SavedModel folder")
    qu.add_argument("--calib", required=True, metavar="DATA",
                    help="calibration samples: .npz (x), .npy, .csv or a folder")
    qu.add_argument("--eval", metavar="DATA", help="evaluation samples with labels (y)")
    qu.add_argument("--mode", default="int8",
                    choices=["int8", "int8-fallback", "dynamic", "float16"])
    qu.add_argument("-o", "--output", metavar="OUT.tflite", help="where to write the model")
    qu.add_argument("--labels", metavar="FILE|a,b,c",
                    help="class names (default: labels.txt next to the model)")
    qu.add_argument("--no-arena", action="store_true", help="skip the arena measurement")
    qu.add_argument("--json", action="store_true", help="print one JSON object")
    qu.set_defaults(func=cmd_quantize)

    ex = sub.add_parser("export", help="export a .tflite model as C array, Arduino library or UF2")
    ex.add_argument("model", help=".tflite model")
    ex.add_argument("--format", required=True, choices=["c", "arduino", "uf2"])
    ex.add_argument("-o", "--output", required=True, metavar="OUT",
                    help="folder (c, arduino) or .uf2 file")
    ex.add_argument("--board", metavar="ID", help="board id: UF2 family and model address")
    ex.add_argument("--address", metavar="HEX", help="UF2 flash address (overrides the board)")
    ex.add_argument("--family", metavar="HEX", help="UF2 family id (overrides the board)")
    ex.add_argument("--name", help="C identifier for the array (default: file name)")
    ex.add_argument("--json", action="store_true", help="print one JSON object")
    ex.set_defaults(func=cmd_export)

    fe = sub.add_parser("features", help="what works on this system (tflite-micro, LiteRT, "
                        "TensorFlow) and how; what is not available and why")
    fe.add_argument("--json", action="store_true", help="print one JSON object")
    fe.set_defaults(func=cmd_features)


# -- availability ---------------------------------------------------------------------------

def features() -> list[Any]:
    """Every model feature (model_tools.availability) plus the virtual board's inference."""
    from device_drivers.virtual.worker import backend_name
    from model_tools.availability import Feature, model_features
    from model_tools.tflm import TFLM_MISSING

    out = model_features()
    backend = backend_name()
    title = "virtual board: run an uploaded model"
    if backend == "tflite-micro":
        out.append(Feature("virtual_board", title, True, "tflite-micro (arena measured)"))
    elif backend:
        out.append(Feature("virtual_board", title, True, f"{backend} (arena estimated: "
                           f"{TFLM_MISSING})"))
    else:
        out.append(Feature("virtual_board", title, False, None,
                           "no interpreter: neither tflite-micro nor LiteRT is installed"))
    return out


def feature_checks() -> list[Any]:
    """The features as ``tinyops doctor`` checks (a missing one is a warning with its fix)."""
    from device_drivers.boards.doctor import OK, WARN, Check

    checks = []
    for f in features():
        fix = None
        if not f.available:
            from model_tools.availability import ADDON_HINT

            fix = ADDON_HINT if f.key == "convert" else (
                "use Linux x86-64 for TFLM figures (pip install tflite-micro)"
                if f.key in ("tflm_verdict", "arena_exact") else "pip install ai-edge-litert")
        checks.append(Check(f"feature-{f.key}", OK if f.available else WARN,
                            f"{f.title}: {f.label}", fix))
    return checks


def cmd_features(args: argparse.Namespace) -> int:
    found = features()
    if args.json:
        print(json.dumps({"ok": True, "features": [f.to_dict() for f in found]}))
        return 0
    for f in found:
        print(f"[{'ok  ' if f.available else 'MISS'}] {f.title}: {f.label}")
    return 0


def _delegate_to_addon(argv: list[str], as_json: bool) -> int | None:
    """Where this Python has no TensorFlow but the conversion add-on is installed, run the
    command there (same arguments); None when there is nothing to delegate to."""
    from model_tools.availability import convert_addon, tensorflow_installed

    python = None if tensorflow_installed() else convert_addon()
    if python is None:
        return None
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return subprocess.run([str(python), "-m", "app.cli", *argv], env=env, check=False).returncode


# -- helpers --------------------------------------------------------------------------------

def lookup_board(board_id: str) -> Any:
    """The registry board ``board_id`` (raises an exit-code-2 error if unknown)."""
    try:
        from device_drivers.boards import get_board
    except ImportError:
        raise ModelInputError(f"unknown board {board_id!r}: the board registry is not available",
                              "run without --board") from None
    return get_board(board_id)


def _progress(enabled: bool):
    if not enabled or not sys.stderr.isatty():
        return None

    def show(fraction: float, message: str) -> None:
        sys.stderr.write(f"\r{fraction:4.0%} {message[:70]:<70}")
        if fraction >= 1.0:
            sys.stderr.write("\n")
        sys.stderr.flush()

    return show


def _labels(arg: str | None, model: Path) -> list[str] | None:
    if arg:
        path = Path(arg)
        if path.is_file():
            return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
        return [s.strip() for s in arg.split(",") if s.strip()]
    default = (model if model.is_dir() else model.parent) / "labels.txt"
    if default.is_file():
        return [ln.strip() for ln in default.read_text().splitlines() if ln.strip()]
    return None


def _int(text: str | None, what: str) -> int | None:
    if text is None:
        return None
    try:
        return int(text, 0)
    except ValueError:
        raise ModelInputError(f"{what} {text!r} is not a number", "write it like 0x10100000") \
            from None


def _kb(n: int | None) -> str:
    return "?" if n is None else f"{n} B ({n / 1024:.1f} KiB)"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.2%}"


# -- commands -------------------------------------------------------------------------------

def _needs_conversion(path: str) -> bool:
    return Path(path).is_dir() or Path(path).suffix.lower() != ".tflite"


def _analyze_argv(args: argparse.Namespace) -> list[str]:
    argv = ["analyze", args.model]
    for flag, value in (("--board", args.board), ("--compare", args.compare),
                        ("--calib", args.calib)):
        argv += [flag, value] if value else []
    return argv + [f for f, on in (("--no-measure", args.no_measure), ("--layers", args.layers),
                                   ("--json", args.json)) if on]


def cmd_analyze(args: argparse.Namespace) -> int:
    from model_tools.analyze import BoardLimits, analyze
    from model_tools.availability import unavailable

    if _needs_conversion(args.model):
        code = _delegate_to_addon(_analyze_argv(args), args.json)
        if code is not None:
            return code

    limits = BoardLimits.from_board(lookup_board(args.board)) if args.board else None
    result = analyze(args.model, board=limits, measure=not args.no_measure,
                     progress=_progress(not args.json))
    if args.compare and not args.layers:
        raise ModelInputError("--compare belongs to the per-layer report", "add --layers")
    if args.layers:
        from model_tools.layers import layers_report

        result["layer_report"] = layers_report(args.model, quantized=args.compare,
                                               calib=args.calib)
    if args.target:
        from app.cli.firmware_cmd import analyze_target

        analyze_target(result, args.model, args.target, args.kernels, limits)
    result["unavailable"] = unavailable(features())
    if args.json:
        print(json.dumps({"ok": True, **result}))
        return 0
    print(f"{result['model']} ({result['kind']}, sha256 {result['sha256'][:16]}...)")
    if result.get("converted"):
        print(f"  analyzed as: {result['converted']}")
    for side in ("inputs", "outputs"):
        for t in result[side]:
            q = t["quantization"]
            qs = f" scale {q['scale']} zero point {q['zero_point']}" if q else ""
            print(f"  {side[:-1]:6} {t['name']}: {t['dtype']} {t['shape']}{qs}")
    print(f"  params {result['params']}, MACs {result['macs']}, flash {_kb(result['flash_bytes'])}")
    print(f"  arena {_kb(result['arena_bytes'])} ({result['arena_method']})")
    ops = ", ".join(f"{o['op']} x{o['count']}" + ("" if o["tflm"] in (True, None) else " (NO)")
                    for o in result["ops"])
    print(f"  ops: {ops}")
    for label in result["unavailable"].values():
        print(f"  {label}")
    if result["tflm_error"]:
        print(f"  TFLM: {result['tflm_error']}")
    elif result["tflm_compatible"]:
        print("  TFLM: builds and runs")
    if args.layers:
        _print_layers(result["layer_report"])
    target = result.get("target")
    if target:
        figure = (f"{_kb(target['arena_used'])} ({target['arena_used']} B)"
                  if target["arena_used"] is not None else f"does not load: {target['error']}")
        print(f"  arena on {target['cpu']} ({target['kernels']}, QEMU {target['machine']}): "
              f"{figure}; host figure {result['arena_bytes']} B")
    fit = result.get("fit")
    if fit:
        print(f"  {fit['board']}: {fit['verdict'].upper()} - {fit['reason']}")
    if args.board:
        from model_tools.latency import format_estimate

        print(f"  latency on {args.board}: {format_estimate(result.get('latency'))}")
    return 0 if result["tflm_compatible"] is not False else 1


def _print_layers(report: dict[str, Any]) -> None:
    errors = report.get("error_metric") is not None
    head = "  idx op                     output              MACs     params  act B"
    print(head + ("   SQNR dB  drop dB" if errors else ""))
    for r in report["layers"]:
        line = (f"  {r['index']:3} {r['op'][:22]:<22} {str(r['output_shape'])[:18]:<18} "
                f"{r['macs']:>9} {r['params']:>8} {r['activation_bytes']:>7}")
        if errors:
            sq, drop = r.get("sqnr_db"), r.get("sqnr_drop_db")
            line += " " + ("       -" if sq is None else f"{sq:8.1f}")
            line += "" if drop is None else f" {drop:8.1f}"
        print(line)
    if report.get("worst"):
        w = report["worst"]
        print(f"  largest int8 error added: operator {w['index']} {w['op']} "
              f"({w['sqnr_drop_db']} dB SQNR lost)")


def _quantize_argv(args: argparse.Namespace) -> list[str]:
    argv = ["quantize", args.model, "--calib", args.calib, "--mode", args.mode]
    for flag, value in (("--eval", args.eval), ("-o", args.output), ("--labels", args.labels)):
        argv += [flag, value] if value else []
    return argv + [f for f, on in (("--no-arena", args.no_arena), ("--json", args.json)) if on]


def cmd_quantize(args: argparse.Namespace) -> int:
    from model_tools.availability import unavailable
    from model_tools.quantize import quantize

    code = _delegate_to_addon(_quantize_argv(args), args.json)
    if code is not None:
        return code
    cancel = threading.Event()
    report = quantize(args.model, args.calib, eval_data=args.eval, mode=args.mode,
                      output=args.output, labels=_labels(args.labels, Path(args.model)),
                      measure_arena=not args.no_arena, progress=_progress(not args.json),
                      cancel=cancel)
    if args.json:
        print(json.dumps({"ok": True, **report.to_dict(),
                          "unavailable": unavailable(features())}))
        return 0
    print(f"wrote {report.output} ({report.mode}, sha256 {report.sha256[:16]}...)")
    print(f"  size: float {_kb(report.float_size)} -> {_kb(report.quantized_size)}")
    if report.float_accuracy is not None:
        print(f"  accuracy: float {_pct(report.float_accuracy)} -> quantized "
              f"{_pct(report.quantized_accuracy)} on {report.eval_samples} samples "
              f"({report.engine})")
    print(f"  top-1 agreement {_pct(report.agreement)}, output RMSE {report.output_rmse:.5f}")
    for name, pc in (report.per_class or {}).items():
        print(f"    {name:<16} n={pc['count']:<5} float {_pct(pc['float'])} "
              f"quantized {_pct(pc['quantized'])}")
    print(f"  arena {_kb(report.arena_bytes)} ({report.arena_method}); TFLM "
          + ("ok" if report.tflm_compatible else f"NOT compatible: {report.tflm_error}"))
    print(f"  model card: {report.card}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from model_tools.export import export_model

    address = _int(args.address, "--address")
    family = _int(args.family, "--family")
    region = None
    if args.board:
        board = lookup_board(args.board)
        if args.format == "uf2":
            if board.model_region is None or board.uf2_family is None:
                raise ModelInputError(
                    f"board {board.id} takes no UF2 files (back end {board.backend})",
                    "export --format c or arduino, or use `tinyops flash` for this board")
            address = board.model_region.address if address is None else address
            family = board.uf2_family if family is None else family
            region = board.model_region.size
    elif args.format == "uf2" and address is None:
        raise ModelInputError("UF2 export needs a board", "pass --board ID (or --address/--family)")
    result = export_model(args.model, args.format, args.output, name=args.name,
                          uf2_address=address, uf2_family=family, region_size=region)
    if args.json:
        print(json.dumps({"ok": True, **result.to_dict()}))
        return 0
    print(f"exported {result.name} ({result.size} bytes, sha256 {result.sha256[:16]}...) as "
          f"{result.format}:")
    for f in result.files:
        print(f"  {f}")
    return 0
