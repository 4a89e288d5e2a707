"""Seeded random faults during real flashes: nothing may end bricked or silently wrong.

Every run flashes a new model (``device_drivers.flashing.flash``: upload, device sha256,
atomic load-model, model-info) to a virtual board over a real pty while one fault hits the
link at a random point: corrupted lines, dropped frames, late answers (persisting to the
end, or a short glitch), several at once, or the cable pulled after a random number of
bytes. The fault starts when the board has received a random share of the bytes a clean
flash sends (watched on the board's counter, so it can land in the upload, the verify or
the load). Each run must end as one of:

- ``ok``: flash returned success and the board runs the new model;
- ``clean failure``: flash raised a TinyOps error and the board still runs the previous model;
- ``failed, new loaded``: flash raised (an answer was lost) but the board had verified and
  loaded the complete new model: not wrong, reported separately;

and after the faults are cleared a new session (on the re-plugged port, if it was pulled)
must reach the board and read the same model from model-info. "Bricked" (no model, board
unreachable), "silently wrong" (success reported, other model running; or a model that is
neither) and any other exception escaping ``flash`` are counted; the count must be 0.

Default run: a handful of seeds (< 60 s). ``uv run pytest -m soak``: 1 000 runs
(``TINYOPS_SOAK_UPLOAD_RUNS`` overrides); replay one with ``TINYOPS_UPLOAD_SEED=N``.
"""

from __future__ import annotations

import hashlib
import os
import random
import threading
import time
from collections import Counter
from dataclasses import dataclass

import pytest

from device_drivers import paths
from device_drivers.errors import TinyOpsError
from device_drivers.flashing import Artifact, FlashOptions, flash
from device_drivers.link import DeviceSession
from device_drivers.virtual import FaultConfig, VirtualBoard
from fleet_ops.records import open_store
from fleet_ops.records.device_ops import record_flash

BASE = (paths.resources_dir() / "examples" / "vibration" / "model_int8.tflite").read_bytes()
PAD = 24_000  # ~35 KB: nine upload chunks, so a random point can fall anywhere
KINDS = ("corrupt", "drop", "delay", "glitch", "combo", "disconnect")
BAD = ("bricked", "silently wrong", "escaped exception", "unreachable after")


def model(n: int) -> bytes:
    """A valid, distinct model per run, all the same size (the trailing padding holds the run
    number: it changes the digest, not the graph)."""
    return BASE + b"\x00" * (PAD - 4) + n.to_bytes(4, "little")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Plan:
    seed: int
    kind: str
    at: float  # share of a clean flash's bytes received by the board before the fault
    faults: FaultConfig
    glitch_s: float | None = None  # the fault is switched off again after this long

    def __str__(self) -> str:
        extra = f" for {self.glitch_s:.2f} s" if self.glitch_s else ""
        return (f"seed={self.seed} {self.kind} at {self.at:.2f} "
                f"[{', '.join(self.faults.active)}]{extra}")


def make_plan(seed: int, clean_bytes: int) -> Plan:
    rng = random.Random(seed)
    kind = rng.choice(KINDS)
    at = rng.random()
    if rng.random() < 0.125:
        at = 0.0  # from the very first byte: the session's opening requests are hit too
    glitch = None
    # rates from "survivable with retries" to "hopeless": both ends must stay honest
    if kind == "corrupt":  # per console line; a 4 KB chunk is ~44 lines
        faults = FaultConfig(corrupt=rng.uniform(0.001, 0.04), seed=seed)
    elif kind == "drop":  # per SMP frame
        faults = FaultConfig(drop=rng.uniform(0.02, 0.4), seed=seed)
    elif kind == "delay":  # the per-request timeout is ~1.1 s
        faults = FaultConfig(delay_ms=rng.uniform(50, 2000), seed=seed)
    elif kind == "glitch":  # a bad patch of cable: everything goes wrong, briefly
        faults = FaultConfig(corrupt=0.5, drop=0.5, delay_ms=rng.uniform(200, 1500), seed=seed)
        glitch = rng.uniform(0.05, 1.5)
    elif kind == "combo":
        faults = FaultConfig(corrupt=rng.uniform(0, 0.02), drop=rng.uniform(0, 0.2),
                             delay_ms=rng.uniform(0, 800), seed=seed)
    else:  # disconnect: the budget counts from the start of the flash
        at = rng.uniform(0.0, 1.05)
        faults = FaultConfig(disconnect_after=max(1, int(at * clean_bytes)), seed=seed)
    return Plan(seed, kind, at, faults, glitch)


class FaultTrigger(threading.Thread):
    """Switches ``plan.faults`` on once the board received ``at`` of a clean flash's bytes."""

    def __init__(self, board: VirtualBoard, plan: Plan, clean_bytes: int) -> None:
        super().__init__(name="fault-trigger", daemon=True)
        self.board, self.plan = board, plan
        self.start_rx = board.bytes_rx
        self.threshold = plan.at * clean_bytes
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if self.board.bytes_rx - self.start_rx >= self.threshold:
                self.board.set_faults(self.plan.faults)
                if self.plan.glitch_s and not self.done.wait(self.plan.glitch_s):
                    self.board.set_faults(FaultConfig())
                return
            time.sleep(0.0005)


def reach(board: VirtualBoard, timeout: float = 10.0) -> str | None:
    """The running model's sha256 as model-info reports it through a new session."""
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with DeviceSession.open(board.port, timeout_s=2.0) as session:
                info = session.model_info()
                if info is None:
                    raise AssertionError("the board lost its runtime")
                return bytes(info.sha256).hex() if info.loaded and info.sha256 else None
        except TinyOpsError as exc:  # the pty is being re-plugged: try again
            last = exc
            time.sleep(0.1)
    raise AssertionError(f"board unreachable after the faults were cleared: {last}")


def one_run(board: VirtualBoard, plan: Plan, n: int, clean_bytes: int) -> tuple[str, str]:
    data = model(n)
    previous = board.loaded_model_sha256
    error = ""
    board.set_faults(FaultConfig())
    trigger = FaultTrigger(board, plan, clean_bytes)
    if plan.kind == "disconnect":
        board.set_faults(plan.faults, applied_within=10)  # budget from this flash's 1st byte
    else:
        trigger.start()
    try:
        # short timeouts keep failing runs short (baudrate only sizes the per-chunk timeout:
        # the pty is not paced)
        result = flash(Artifact.from_bytes(data, f"m{n}.tflite"), board.port,
                       options=FlashOptions(timeout_scale=0.5, baudrate=921600),
                       recorder=record_flash)
        ok = result.ok and result.verified
    except TinyOpsError as exc:
        ok, error = False, exc.message
    except Exception as exc:  # anything else escaping flash() is a robustness bug
        trigger.done.set()
        board.set_faults(FaultConfig())
        return "escaped exception", f"{type(exc).__name__}: {exc}"
    finally:
        trigger.done.set()
        board.set_faults(FaultConfig(), applied_within=10)  # acknowledged by the link thread
    running = board.loaded_model_sha256
    try:
        reported = reach(board)
    except AssertionError as exc:
        return "unreachable after", str(exc)
    if running is None or reported != running:
        return "bricked", f"board runs {running}, reports {reported}"
    if ok:
        return ("ok", "") if running == sha(data) else ("silently wrong", f"runs {running}")
    if running == previous:
        return "clean failure", error
    if running == sha(data):
        return "failed, new loaded", error
    return "silently wrong", f"failed and runs {running}, neither old nor new"


@pytest.fixture(scope="module")
def board(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as mp:  # module scope: before the per-test home
        mp.setenv("TINYOPS_HOME", str(tmp_path_factory.mktemp("home")))
        with VirtualBoard(board="virtual", state_dir=tmp_path_factory.mktemp("board")) as vb:
            yield vb


@pytest.fixture(scope="module")
def clean_bytes(board: VirtualBoard) -> int:
    """Bytes the board receives during a clean flash of a model(n)-sized file."""
    before = board.bytes_rx
    flash(Artifact.from_bytes(model(2**32 - 1), "calibration.tflite"), board.port)
    return board.bytes_rx - before


def run_seeds(board: VirtualBoard, clean_bytes: int, seeds: list[int],
              budget_s: float | None = None, at_least: int = 0) -> Counter:
    """Run the seeds in order (stopping after ``budget_s`` once ``at_least`` ran)."""
    outcomes: Counter = Counter()
    bad: list[str] = []
    records_before = len(open_store().list())
    started = time.monotonic()
    ran = 0
    for n, seed in enumerate(seeds):
        if budget_s is not None and ran >= at_least and time.monotonic() - started > budget_s:
            break
        ran += 1
        plan = make_plan(seed, clean_bytes)
        outcome, detail = one_run(board, plan, n, clean_bytes)
        outcomes[(plan.kind, outcome)] += 1
        if outcome in BAD:
            bad.append(f"{plan}: {outcome} ({detail})")
    by_outcome = Counter()
    for (_, outcome), count in outcomes.items():
        by_outcome[outcome] += count
    summary = ", ".join(f"{k} {v}" for k, v in sorted(by_outcome.items()))
    print(f"\n{ran} faulted flashes in {time.monotonic() - started:.0f} s: {summary}")
    for kind in KINDS:
        row = {o: c for (k, o), c in outcomes.items() if k == kind}
        print(f"  {kind:10s} " + ", ".join(f"{o} {c}" for o, c in sorted(row.items())))
    assert not bad, f"{len(bad)} runs bricked or silently wrong:\n" + "\n".join(bad[:20])
    # every flash, whatever happened, left exactly one provisioning record
    assert len(open_store().list()) - records_before == ran
    return outcomes


def _seeds(default: list[int]) -> list[int]:
    one = os.environ.get("TINYOPS_UPLOAD_SEED")
    return [int(one)] if one else default


def test_random_upload_faults_never_brick_or_lie(board: VirtualBoard, clean_bytes: int) -> None:
    # a fixed sample, every fault kind in the first six (see make_plan for what each seed
    # does); then more while the time budget of the default run lasts
    seeds = _seeds([0, 1, 2, 5, 16, 20, 9, 14, 24, 19, 26])
    outcomes = run_seeds(board, clean_bytes, seeds, budget_s=30.0, at_least=6)
    if len(seeds) > 1:
        kinds = {k for k, _ in outcomes}
        assert kinds == set(KINDS), f"sample should cover every fault kind, got {kinds}"
        assert any(o == "ok" for _, o in outcomes)  # faults are survivable, not just fatal


def test_lost_model_info_answer_is_not_taken_for_a_board_without_runtime(
        board: VirtualBoard) -> None:
    """The first answers of a flash (MCUmgr params, model-info) are lost, then the cable is
    good again: the flash must fail cleanly or load the new model, never report success
    with the old model running."""
    data = model(77_777)
    previous = board.loaded_model_sha256
    board.set_faults(FaultConfig(drop=1.0), applied_within=10)
    dropped = board.counters.frames_dropped
    outcome: list[object] = []

    def run() -> None:
        try:
            outcome.append(flash(Artifact.from_bytes(data, "m.tflite"), board.port,
                                 options=FlashOptions(timeout_scale=0.25, baudrate=921600)))
        except TinyOpsError as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 10
    while board.counters.frames_dropped < dropped + 2:  # params read, then model-info
        assert time.monotonic() < deadline, "the flash sent no requests"
        time.sleep(0.001)
    board.set_faults(FaultConfig())
    thread.join(timeout=60)
    result = outcome[0]
    running = board.loaded_model_sha256
    if isinstance(result, TinyOpsError):
        assert running == previous, result.message
    else:
        assert running == sha(data), f"success reported, but the board runs {running[:16]}… " \
            f"(the previous model {'still' if running == previous else 'not'}); notes: " \
            f"{result.notes}"


@pytest.mark.soak
@pytest.mark.timeout(4 * 3600)
def test_random_upload_faults_soak(board: VirtualBoard, clean_bytes: int) -> None:
    runs = int(os.environ.get("TINYOPS_SOAK_UPLOAD_RUNS", "1000"))
    outcomes = run_seeds(board, clean_bytes, _seeds(list(range(1000, 1000 + runs))))
    assert sum(outcomes.values()) == runs or os.environ.get("TINYOPS_UPLOAD_SEED")
