"""The TinyOps runtime on the virtual board: SMP group 64 and the telemetry stream.

The runtime feeds the loaded model a synthetic 3-axis vibration (``signal.py``) whose
machine state changes over time, and prints one JSON line per stream period with the
class scores, latency and the board's resources.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from smp import error as smperror

from device_drivers import paths
from device_drivers.protocol import runtime as rt
from device_drivers.virtual import tensors
from device_drivers.virtual.flash import FlashStore, FsPathError
from device_drivers.virtual.limits import BoardLimits
from device_drivers.virtual.model import LoadedModel, ModelError, ModelRunner
from device_drivers.virtual.signal import STATES, StateSchedule, VibrationSource
from device_drivers.virtual.smp_server import Dispatcher, Fail
from device_drivers.virtual.stream_summary import SummaryAccumulator

log = logging.getLogger(__name__)

RUNTIME_NAME = "tinyops-runtime 1.0.0"
DEFAULT_PATH = "/lfs/model.tflite"
DEFAULT_PERIOD_MS = 100
PERIOD_RANGE_MS = (10, 60_000)
DEFAULT_SUMMARY_PERIOD_MS = 10_000
SUMMARY_RANGE_MS = (100, 3_600_000)


def default_model_files() -> tuple[Path, Path] | None:
    """The bundled example model and its labels, if they are installed."""
    folder = paths.resources_dir() / "examples" / "vibration"
    model = folder / "model_int8.tflite"
    return (model, folder / "labels.txt") if model.is_file() else None


def read_labels(path: Path) -> list[str] | None:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    return [line.strip() for line in lines if line.strip()] or None


def card_labels(model: Path) -> list[str] | None:
    """The class labels in the model's card (``<model>.card.json``, written by quantize
    beside it), or None. Read as plain JSON: the board does not depend on model_tools."""
    try:
        card = json.loads(model.with_name(model.name + ".card.json").read_text("utf-8"))
    except (OSError, ValueError):
        return None
    labels = card.get("labels") if isinstance(card, dict) else None
    if isinstance(labels, list) and labels and all(isinstance(x, str) for x in labels):
        return list(labels)
    return None


def model_labels(model: Path) -> list[str] | None:
    """Labels for a model file: its card's, else ``labels.txt`` beside it, else
    ``<model>.labels``."""
    return card_labels(model) or read_labels(model.with_name("labels.txt")) or read_labels(
        model.with_suffix(".labels"))


def _fail(code: str, detail: str = "") -> Fail:
    """A group-64 error; ``detail`` is for logs and the CLI (ErrorV2 carries only rc)."""
    return Fail(rt.RUNTIME_ERR[code], rt.GROUP_ID, f"{code}: {detail}" if detail else code,
                rt.RuntimeErrorV2)


class BusyMeter:
    """CPU load: the share of wall time the board spent working (inference, requests)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = 0.0
        self._since = time.monotonic()
        self.load = 0.0

    def add(self, seconds: float) -> None:
        with self._lock:
            self._busy += max(0.0, seconds)

    def sample(self) -> float:
        with self._lock:
            now = time.monotonic()
            elapsed = now - self._since
            if elapsed >= 0.05:
                ratio = min(1.0, self._busy / elapsed)
                self.load = 0.7 * self.load + 0.3 * ratio if self.load else ratio
                self._busy, self._since = 0.0, now
            return self.load


class Runtime:
    def __init__(self, limits: BoardLimits, flash: FlashStore, runner: ModelRunner,
                 smp_buffers: int, seed: int = 0) -> None:
        self.limits = limits
        self.flash = flash
        self.runner = runner
        self.smp_buffers = smp_buffers
        self.hw_id: str | None = None  # the board's own id (its serial), set by the board
        self.busy = BusyMeter()
        self.inferences = 0
        self.last_latency_us = 0
        self.loads = 0
        self.load_failures = 0
        self._seed = seed
        self._lock = threading.Lock()
        self.boot()

    # ---- life cycle --------------------------------------------------------------------
    def boot(self) -> None:
        """Power-on defaults: uptime 0, streaming on at the default period."""
        with self._lock:
            self.booted = time.monotonic()
            self.stream_on = True
            self.period_ms = DEFAULT_PERIOD_MS
            self.fields: set[str] = {"scores", "latency", "resources"}
            self.mode = "raw"
            self.summary_period_ms = DEFAULT_SUMMARY_PERIOD_MS
            self.summary: SummaryAccumulator | None = None
            self.source = VibrationSource(self._seed)
            self.schedule = StateSchedule(self._seed)

    def uptime_ms(self) -> int:
        return int((time.monotonic() - self.booted) * 1000)

    def restore(self) -> None:
        """At start: run the model the flash's model region holds, as a real board would."""
        meta = self.flash.state.get("model")
        data = self.flash.read_model_region()
        if not meta or data is None:
            return
        if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            log.warning("model region does not match its record; starting without a model")
            return
        try:
            self.runner.load(data, meta["path"], list(meta.get("labels") or []),
                             self.limits.arena_size)
        except ModelError as exc:
            log.warning("stored model does not load (%s): starting without a model", exc)

    def install(self, data: bytes, path: str, labels: list[str] | None) -> LoadedModel:
        """Store ``data`` at ``path`` and load it (``--model``, the bundled default)."""
        self.flash.write_file(path, data)
        return self._load(path, None, labels)

    # ---- group 64 ----------------------------------------------------------------------
    def register(self, dispatcher: Dispatcher) -> None:
        dispatcher.error_classes[rt.GROUP_ID] = rt.RuntimeErrorV2
        dispatcher.add(rt.ModelInfoReadRequest, self.model_info)
        dispatcher.add(rt.LoadModelWriteRequest, self.load_model)
        dispatcher.add(rt.StreamWriteRequest, self.stream)
        dispatcher.add(rt.InferWriteRequest, self.infer)
        dispatcher.add(rt.StatsReadRequest, self.stats)

    def model_info(self, _req: Any) -> rt.ModelInfoReadResponse:
        m = self.runner.current
        base = {"runtime": RUNTIME_NAME, "protocol": rt.RUNTIME_PROTOCOL_VERSION,
                "board": self.limits.id, "arena_size": self.limits.arena_size,
                "default_path": DEFAULT_PATH, "hw_id": self.hw_id}
        if m is None:
            return rt.ModelInfoReadResponse(loaded=False, **base)
        return rt.ModelInfoReadResponse(
            loaded=True, path=m.path, sha256=m.sha256, size=m.size, arena_used=m.arena_used,
            inputs=[rt.TensorSpec(**s) for s in m.inputs],
            outputs=[rt.TensorSpec(**s) for s in m.outputs], labels=m.labels, **base)

    def load_model(self, req: rt.LoadModelWriteRequest) -> rt.LoadModelWriteResponse:
        m = self._load(req.path, req.sha256, req.labels)
        return rt.LoadModelWriteResponse(sha256=m.sha256, size=m.size, arena_used=m.arena_used)

    def _load(self, path: str, sha256: bytes | None, labels: list[str] | None) -> LoadedModel:
        try:
            data = self.flash.read_file(path)
        except (FsPathError, OSError):
            self.load_failures += 1
            raise _fail("NOT_FOUND") from None
        started = time.monotonic()
        try:
            if sha256 is not None and hashlib.sha256(data).digest() != bytes(sha256):
                raise _fail("DIGEST_MISMATCH")
            if len(data) > self.limits.model_limit:
                raise _fail("TOO_LARGE", f"{len(data)} B does not fit the "
                            f"{self.limits.model_limit} B model storage")
            previous = self.runner.current
            if not labels:
                labels = self._labels_near(path)
            model = self.runner.load(data, path, labels or [], self.limits.arena_size)
            classes = tensors.class_count(model.outputs[0])
            if not labels and previous is not None and len(previous.labels) == classes:
                model.labels = list(previous.labels)  # a retrained model, same classes
        except ModelError as exc:
            self.load_failures += 1
            log.info("load-model %s refused: %s", path, exc)
            code = exc.code if exc.code in rt.RUNTIME_ERR.__members__ else "BAD_MODEL"
            raise _fail(code, str(exc)) from None
        except Fail:
            self.load_failures += 1
            raise
        finally:
            self.busy.add(time.monotonic() - started)
        model.labels = tensors.fit_labels(model.labels, classes)
        self.flash.write_model_region(data)
        self.flash.state["model"] = {"path": path, "sha256": model.sha256.hex(),
                                     "size": model.size, "labels": model.labels}
        self.flash.save()
        self.loads += 1
        return model

    def _labels_near(self, path: str) -> list[str] | None:
        stem = path.rsplit(".", 1)[0] if "." in path.rsplit("/", 1)[-1] else path
        for candidate in (stem + ".labels", stem + ".txt", path.rsplit("/", 1)[0] + "/labels.txt"):
            try:
                text = self.flash.read_file(candidate).decode("utf-8", "replace")
            except (FsPathError, OSError):
                continue
            labels = [line.strip() for line in text.splitlines() if line.strip()]
            if labels:
                return labels
        return None

    def stream(self, req: rt.StreamWriteRequest) -> rt.StreamWriteResponse:
        with self._lock:
            if req.period_ms is not None:
                lo, hi = PERIOD_RANGE_MS
                if not lo <= req.period_ms <= hi:
                    raise Fail(smperror.MGMT_ERR.EINVAL,
                               reason=f"period_ms must be {lo}..{hi}")
                self.period_ms = int(req.period_ms)
            if req.fields is not None:
                self.fields = set(req.fields) or {"scores", "latency", "resources"}
            if req.summary_period_ms is not None:
                lo, hi = SUMMARY_RANGE_MS
                if not lo <= req.summary_period_ms <= hi:
                    raise Fail(smperror.MGMT_ERR.EINVAL,
                               reason=f"summary_period_ms must be {lo}..{hi}")
                self.summary_period_ms = int(req.summary_period_ms)
            if req.mode is not None and req.mode != self.mode:
                self.mode = req.mode
                self.summary = None  # a new period starts with the next inference
            self.stream_on = bool(req.on)
            if req.mode is None:
                return rt.StreamWriteResponse(on=self.stream_on, period_ms=self.period_ms)
            return rt.StreamWriteResponse(on=self.stream_on, period_ms=self.period_ms,
                                          mode=self.mode,
                                          summary_period_ms=self.summary_period_ms)

    def infer(self, req: rt.InferWriteRequest) -> rt.InferWriteResponse:
        output, latency = self._run(bytes(req.input))
        return rt.InferWriteResponse(output=output, latency_us=latency)

    def _run(self, raw: bytes) -> tuple[bytes, int]:
        try:
            output, latency = self.runner.infer(raw)
        except ModelError as exc:
            code = exc.code if exc.code in rt.RUNTIME_ERR.__members__ else "BAD_MODEL"
            raise _fail(code) from None
        self.busy.add(latency / 1e6)
        self.inferences += 1
        self.last_latency_us = latency
        return output, latency

    def stats(self, _req: Any) -> rt.StatsReadResponse:
        r = self.resources()
        return rt.StatsReadResponse(
            uptime_ms=self.uptime_ms(), heap_total=self.limits.ram_reserve,
            arena_size=self.limits.arena_size, inferences=self.inferences,
            last_latency_us=self.last_latency_us, **r)

    # ---- sensors and telemetry -----------------------------------------------------------
    def resources(self) -> dict[str, Any]:
        load = self.busy.sample()
        t = time.monotonic() - self.booted
        m = self.runner.current
        heap_total = self.limits.ram_reserve
        heap_used = int(0.35 * heap_total) + self.smp_buffers + (512 if m is not None else 0)
        rng = np.random.default_rng(int(t * 1000))
        return {
            "arena_used": m.arena_used if m is not None else 0,
            "heap_free": max(0, heap_total - heap_used - int(rng.integers(0, 64)) * 8),
            "cpu_load": round(min(1.0, 0.01 + load), 4),
            "temp_c": round(27.0 + 18.0 * load + 0.8 * math.sin(t / 48.0)
                            + float(rng.normal(0, 0.05)), 2),
            "vcc_mv": int(3300 - 35 * load + int(rng.integers(-3, 4))),
        }

    def telemetry_line(self) -> bytes:
        """One stream period: read the sensor, run the model, format the JSON line (in
        summary mode: add the result to the period's summary; ``b""`` until it is due)."""
        started = time.monotonic()
        t_ms = self.uptime_ms()
        with self._lock:
            state = self.schedule.state_at(t_ms / 1000.0)
            window = self.source.window(state)
            fields = set(self.fields)
        rec: dict[str, Any] = {"t": t_ms}
        m = self.runner.current
        if m is not None and fields & {"scores", "latency"}:
            try:
                raw = tensors.quantize(window, m.inputs[0])
                output, latency = self._run(raw)
                if "scores" in fields:
                    rec["scores"] = tensors.scores(output, m.outputs[0], m.labels)
                if "latency" in fields:
                    rec["latency_us"] = latency
            except Fail as exc:
                log.debug("stream inference failed: %s", exc)
        if self.mode == "summary":
            summary = self._summarise(rec, t_ms, m.labels if m is not None else None)
            if summary is None:
                self.busy.add(time.monotonic() - started - rec.get("latency_us", 0) / 1e6)
                return b""
            rec = {"t": t_ms, "summary": summary}
        if "resources" in fields:
            rec.update(self.resources())
        rec["state"] = STATES[state]
        line = (json.dumps(rec, separators=(",", ":") if "summary" in rec else None)
                + "\n").encode()
        self.busy.add(time.monotonic() - started - rec.get("latency_us", 0) / 1e6)
        return line

    def _summarise(self, rec: dict[str, Any], t_ms: int,
                   labels: list[str] | None) -> dict[str, Any] | None:
        """Add one inference to the summary; the summary once its period is over."""
        with self._lock:
            if self.summary is None or self.summary.labels != list(labels or []):
                self.summary = SummaryAccumulator(labels)
                self.summary.reset(t_ms)
            self.summary.add(rec.get("scores"), rec.get("latency_us"))
            if not self.summary.due(t_ms, self.summary_period_ms):
                return None
            return self.summary.take(t_ms)
