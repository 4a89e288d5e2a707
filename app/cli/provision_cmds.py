"""Provisioning commands: ``flash`` (one board or a station of many), ``validate``
(``records`` is in ``records_cmd``).

This module is where model_tools (export to UF2/Arduino, the host TFLM reference run) and
device_drivers (back ends, validation, records) meet.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.cli.link_opts import add_link_options, link_options
from app.flash_prep import prepare_artifact
from device_drivers.errors import InputError
from tinyops_base.errors import describe
from tinyops_base.validators import positive_float, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    fl = sub.add_parser("flash", help="flash a model or image to one board or many, verified")
    fl.add_argument("artifact", help=".tflite model, MCUboot image, .uf2, ESP .bin or sketch dir")
    fl.add_argument("--port", action="append", default=[], metavar="P",
                    help="board port (repeat for several boards at once)")
    fl.add_argument("--all", action="store_true", help="every connected board (station mode)")
    fl.add_argument("--on-plug", action="store_true",
                    help="flash each board as it is plugged in (until ^C or --limit)")
    fl.add_argument("--limit", type=positive_int, default=None,
                    help="--on-plug: stop after N boards")
    fl.add_argument("--backend", choices=["smp", "uf2", "esp", "arduino", "virtual"])
    fl.add_argument("--board", help="registry board id (defaults, UF2 family, FQBN, partition)")
    fl.add_argument("--dest", help="smp: file path; uf2: drive; esp: partition or 0xOFFSET")
    fl.add_argument("--baud", type=positive_int, default=115200)
    fl.add_argument("--reset", default="default-reset",
                    choices=["default-reset", "usb-reset", "no-reset", "1200bps"],
                    help="esp: how to enter the ROM bootloader")
    fl.add_argument("--timeout-scale", type=positive_float, default=1.0,
                    help="multiply every timeout (slow links)")
    fl.add_argument("--key", metavar="FILE.pem",
                    help="MCUboot image: check its signature with this key (private or public "
                         "PEM) before flashing")
    fl.add_argument("--enter-recovery", action="store_true",
                    help="MCUboot image: reset the application into MCUboot serial recovery "
                         "first and flash slot 0 there")
    fl.add_argument("--json", action="store_true",
                    help="one JSON object (one board) or JSON lines (station mode)")
    add_link_options(fl)
    fl.set_defaults(func=cmd_flash)

    va = sub.add_parser("validate", help="compare a board's outputs with the host's TFLM run")
    va.add_argument("model", help="the .tflite model the board runs")
    va.add_argument("--port", required=True)
    va.add_argument("--data", required=True, help="samples (.npz with x[, y], .npy, .csv, dir)")
    va.add_argument("--limit", type=positive_int, default=None,
                    help="validate the first N samples")
    va.add_argument("--json", action="store_true", help="print one JSON object")
    va.set_defaults(func=cmd_validate)


# ---------------------------------------------------------------- flash
def _options(args: argparse.Namespace) -> Any:
    from device_drivers.flashing import FlashOptions

    extra: dict[str, Any] = {}
    if args.key:
        extra["key"] = args.key
    if args.enter_recovery:
        extra["enter_recovery"] = True
    return FlashOptions(dest=args.dest, board=args.board, baudrate=args.baud, reset=args.reset,
                        timeout_scale=args.timeout_scale, link=link_options(args), extra=extra)


def _ports_for_all() -> list[tuple[str, str | None]]:
    from device_drivers.boards.scan import scan

    return [(b.port, b.serial_number) for b in scan()
            if b.virtual or (b.source == "serial" and b.board is not None
                             and not b.unknown_bridge)]


def _plug_events(stop: threading.Event):  # type: ignore[no-untyped-def]
    from device_drivers.boards.watcher import watch

    for event in watch(stop=stop, initial=False):
        if event.kind == "added" and event.board.source in ("serial", "virtual"):
            yield event.board.port, event.board.serial_number


def cmd_flash(args: argparse.Namespace) -> int:
    return _recorded(_flash, args)


def _recorded(operation: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a recorded operation (flash, validate) and say where each record went."""
    from fleet_ops.records import check_destination, watch_records

    check_destination()  # a bad records URL stops here, before any board is touched
    with watch_records() as outcomes:
        try:
            code = operation(args)
        except BaseException:
            _records_verdict(1, outcomes)  # a failed operation's record: say where it went
            raise
    return _records_verdict(code, outcomes)


def _records_verdict(code: int, outcomes: list[tuple[Any, str]]) -> int:
    """Say where each record went; a record that is nowhere makes the exit code 1."""
    from fleet_ops.records import pending_count, records_url

    queued = [rec for rec, outcome in outcomes if outcome == "queued"]
    nowhere = [rec for rec, outcome in outcomes if outcome == "nowhere"]
    if queued:
        waiting = pending_count() if records_url() else len(queued)
        print(f"note: {len(queued)} record(s) queued in this station's outbox, {waiting} "
              "waiting for the records server in all; they are sent automatically "
              "(or run 'tinyops records')", file=sys.stderr)
    for rec in nowhere:
        print(f"error: the record of {rec.operation} on {rec.port} ({rec.result}) could not "
              "be written anywhere, neither the records server nor this station's outbox "
              "(see the log)\n  fix: check that the data directory is writable",
              file=sys.stderr)
    return 1 if nowhere and code == 0 else code


def _flash(args: argparse.Namespace) -> int:
    from device_drivers.errors import TinyOpsError
    from device_drivers.flashing import flash
    from fleet_ops.records.device_ops import record_flash

    station = args.all or args.on_plug or len(args.port) > 1
    if not args.port and not (args.all or args.on_plug):
        raise InputError("no board given", "pass --port P (repeat it for several boards), "
                         "--all, or --on-plug")
    options = _options(args)
    with tempfile.TemporaryDirectory(prefix="tinyops-flash-") as tmp:
        job = prepare_artifact(args.artifact, args.backend, args.board, Path(tmp))
        if (args.key or args.enter_recovery) and job.kind != "mcuboot-image":
            raise InputError(f"--key and --enter-recovery apply to MCUboot images; "
                             f"{job.artifact.name} is a {job.kind}",
                             "drop the option, or flash a signed MCUboot image")
        if not station:
            line = _ProgressLine(args.port[0], quiet=args.json)
            try:
                result = _flash_cancellable(
                    lambda cancel: flash(job, args.port[0], options=options,
                                         progress=line.update,
                                         cancel=cancel, recorder=record_flash), line)
            except TinyOpsError as exc:
                line.done()
                if args.json and getattr(exc, "result", None) is not None:
                    print(json.dumps({**exc.result.to_dict(), "ok": False}))
                    return 130 if describe(exc).cancelled else 1
                raise
            line.done()
            _print_result(result, args.json)
            return 0
        return _station(args, job, options)


def _flash_cancellable(run: Callable[[threading.Event], Any], line: _ProgressLine) -> Any:
    """``run(cancel)`` on a worker thread; Ctrl-C sets ``cancel`` and waits for the flash to
    stop at its next safe point, so it ends through its own path: the session closes, the
    record is written and the error says what the board runs now. A second Ctrl-C stops
    waiting."""
    cancel, done = threading.Event(), threading.Event()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = run(cancel)
        except BaseException as exc:  # handed to the main thread
            outcome["error"] = exc
        finally:
            done.set()

    # waited for on an Event, not Thread.join: a join interrupted by Ctrl-C can report the
    # thread as ended while it still runs
    threading.Thread(target=work, name="flash", daemon=True).start()
    try:
        while not done.wait(0.2):
            pass
    except KeyboardInterrupt:
        cancel.set()
        line.done()
        print("cancelling: waiting for the board to finish its current step…", file=sys.stderr,
              flush=True)
        done.wait()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def _station(args: argparse.Namespace, job: Any, options: Any) -> int:
    """Every board flashes the one prepared ``job`` (loaded and looked up once for all)."""
    from device_drivers.flashing import flash
    from device_drivers.flashing.probe import usb_serial_for
    from device_drivers.flashing.station import run_station, watch_and_flash
    from fleet_ops.records.device_ops import record_flash

    cancel = threading.Event()
    board = _StationBoard(as_json=args.json)

    def one(port, progress, token):  # type: ignore[no-untyped-def]
        return flash(job, port, options=options, progress=progress, cancel=token,
                     recorder=record_flash)

    try:
        if args.on_plug:
            print("waiting for boards (^C to stop)…", file=sys.stderr)
            report = watch_and_flash(_plug_events(cancel), one, on_update=board.update,
                                     cancel=cancel, limit=args.limit)
        else:
            found = _ports_for_all() if args.all else []
            ports = list(dict.fromkeys([*args.port, *(p for p, _ in found)]))
            serials = dict(found)
            if not ports:
                raise InputError("no boards found", "plug boards in, or start `tinyops sim`")
            report = run_station(ports, one, on_update=board.update, cancel=cancel,
                                 usb_serial_for=lambda p: serials.get(p) or usb_serial_for(p))
    except KeyboardInterrupt:
        cancel.set()
        raise
    board.summary(report)
    return 0 if report.ok else 1


def _print_result(result: Any, as_json: bool) -> None:
    if as_json:
        print(json.dumps(result.to_dict()))
        return
    kbps = result.throughput_bps / 1000
    print(f"ok  {result.port}  {result.backend}  {result.bytes} B in {result.duration_s:.2f} s "
          f"({kbps:.1f} kB/s)  {result.digest_algo}: device {result.device_digest} "
          f"= local {result.local_digest}")
    if result.previous_sha256 and result.previous_sha256 != result.device_digest:
        print(f"    replaced model {result.previous_sha256[:16]}…  dest {result.dest}")


class _ProgressLine:
    """A single-board flash's progress on stderr: one updating line on a terminal, else a
    line at every 25 % (like the station's board lines); nothing with ``--json``."""

    def __init__(self, port: str, quiet: bool) -> None:
        self.port = port
        self.quiet = quiet
        self.live = not quiet and sys.stderr.isatty()
        self.shown = False
        self.step = -1

    def update(self, fraction: float, message: str) -> None:
        if self.live:
            print(f"\r[{fraction * 100:5.1f}%] {self.port}: {message[:60]:60s}", end="",
                  file=sys.stderr, flush=True)
            self.shown = True
        elif not self.quiet and int(fraction * 4) > self.step:
            self.step = int(fraction * 4)
            print(f"[{fraction * 100:5.1f}%] {self.port}: {message}", file=sys.stderr,
                  flush=True)

    def done(self) -> None:
        if self.shown:
            print(file=sys.stderr)
            self.shown = False


class _StationBoard:
    """One line per board (port and USB serial). On a terminal the block is redrawn in
    place; otherwise a line is printed on every state change and every 25 %."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.tty = sys.stderr.isatty() and not as_json
        self.lock = threading.Lock()
        self.jobs: list[Any] = []
        self.last: dict[int, tuple[str, int]] = {}
        self.drawn = 0

    def update(self, job: Any) -> None:
        with self.lock:
            if job not in self.jobs:
                self.jobs.append(job)
            if self.as_json:
                if job.done:
                    print(json.dumps({"event": "board", **job.to_dict()}), flush=True)
                return
            if self.tty:
                self._redraw()
                return
            step = (job.state, int(job.fraction * 4))
            if self.last.get(id(job)) != step:
                self.last[id(job)] = step
                print(self._line(job), file=sys.stderr, flush=True)

    def _line(self, job: Any) -> str:
        mark = {"ok": "PASS", "failed": "FAIL", "cancelled": "STOP"}.get(job.state, "....")
        text = job.error if job.state in ("failed", "cancelled") else job.message
        return f"{mark} {job.label:40s} {job.fraction * 100:5.1f}%  {(text or '')[:70]}"

    def _redraw(self) -> None:
        if self.drawn:
            sys.stderr.write(f"\x1b[{self.drawn}F")
        for job in self.jobs:
            sys.stderr.write("\x1b[2K" + self._line(job) + "\n")
        self.drawn = len(self.jobs)
        sys.stderr.flush()

    def summary(self, report: Any) -> None:
        if self.as_json:
            out = report.to_dict()
            out.pop("boards", None)
            print(json.dumps({"event": "summary", **out}))
            return
        print(f"{len(report.passed)} passed, {len(report.failed)} failed "
              f"in {report.duration_s:.1f} s")
        for job in report.failed:
            hint = f" (fix: {job.hint})" if job.hint else ""
            print(f"  FAIL {job.label}: {job.error}{hint}")


# ---------------------------------------------------------------- validate
def _divergence_text(div: dict | None, host_layers: bool) -> str:
    """One line on where the board's outputs first differ (validate's per-layer report)."""
    if not host_layers:
        return ("per-layer report: not available on this system (the host reference per "
                "operator needs tflite-micro)")
    if not div:
        return "per-layer report: none"
    if not div.get("supported") or div.get("op") is None:
        return f"per-layer report: {div.get('note', 'none')}"
    return (f"first differing operator: #{div['op']} {div.get('op_type', '')} "
            f"{div.get('name', '')!r}: {div['differing']} of {div['elements']} elements "
            f"({100 * div['share']:.2f} %) differ, largest {div['max_abs_diff']:g} LSB "
            f"({div['max_abs_diff_dequant']:.4g})")


def cmd_validate(args: argparse.Namespace) -> int:
    return _recorded(_validate, args)


def _validate(args: argparse.Namespace) -> int:
    import numpy as np

    from device_drivers.validate import run_validation, tflm_layers
    from fleet_ops.records.device_ops import record_validation
    from model_tools._tflm_process import tflm_available
    from model_tools.data import load_dataset
    from model_tools.tflm import run_model

    model_path = Path(args.model)
    try:
        model = model_path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{model_path} does not exist", "check the model path") from None
    if model[4:8] != b"TFL3":
        raise InputError(f"{model_path.name} is not a .tflite model",
                         "validate the quantized .tflite the board runs")
    data = load_dataset(args.data)

    def reference(raw: np.ndarray) -> np.ndarray:
        return run_model(model, raw)[0]

    # Where the board differs, the first differing operator is named against TFLM's own
    # per-operator outputs on the host (needs tflite-micro).
    layers = tflm_layers(model) if tflm_available() else None
    result = run_validation(args.port, data.x, reference, artifact=model_path.name,
                            model_sha256=hashlib.sha256(model).hexdigest(),
                            artifact_size=len(model), labels=data.y, limit=args.limit,
                            layers=layers, recorder=record_validation)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(f"{'ok  ' if result.ok else 'FAIL'} {result.verify_text} on {args.port}")
        if result.accuracy_device is not None:
            print(f"    accuracy: device {result.accuracy_device:.4f}, host "
                  f"{result.accuracy_host:.4f}, top-1 agreement {result.agreement:.4f}")
        print(f"    latency: median {result.latency_us_median:.0f} µs, "
              f"p95 {result.latency_us_p95:.0f} µs")
        if not result.ok:
            print(f"    differing samples: {result.mismatch_indices[:20]}  max |diff| "
                  f"{result.max_abs_diff:g} LSB ({result.max_abs_diff_dequant:.4g})")
            print(f"    {_divergence_text(result.divergence, layers is not None)}")
    return 0 if result.ok else 1
