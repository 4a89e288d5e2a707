"""The records database under repeated SIGKILLs: nothing committed is ever lost.

Extends ``tests/device_drivers/test_records.py`` (one writer, one kill) to what a station
sees: two writer processes adding records at once (sharing the WAL), both killed at a
random moment, again and again on the same database. After every round the database
passes ``PRAGMA integrity_check``, every record whose ``add`` had returned in any round is
there intact, and the store keeps accepting records. Default: 3 rounds; ``-m soak``: 50.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleet_ops.records import Record, RecordStore

ROOT = Path(__file__).resolve().parents[2]

WRITER = r"""
import sys
from fleet_ops.records import Record, RecordStore
store = RecordStore(sys.argv[1])
w, r = sys.argv[2], sys.argv[3]
i = 0
while True:
    rid = store.add(Record(operation="flash", result="ok", port=f"w{w}-r{r}-{i}",
                           usb_serial=f"S{w}{i}", artifact_size=i,
                           details={"w": w, "r": r, "i": i, "pad": "x" * (i % 300)}))
    print(rid, i, flush=True)
    i += 1
"""


def _round(db: Path, rnd: int, rng: random.Random) -> dict[int, tuple[str, int]]:
    """Two writers, killed together after a random time; {row id: (port, i)} they confirmed."""
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(db), str(w), str(rnd)],
                              cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, text=True)
             for w in range(2)]
    confirmed: dict[int, tuple[str, int]] = {}
    lock = threading.Lock()
    first = threading.Event()

    def read(proc: subprocess.Popen, w: int) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            rid, i = map(int, line.split())
            with lock:
                confirmed[rid] = (f"w{w}-r{rnd}-{i}", i)
            first.set()

    readers = [threading.Thread(target=read, args=(p, w), daemon=True)
               for w, p in enumerate(procs)]
    for t in readers:
        t.start()
    try:
        assert first.wait(30), "the writers did not start"
        time.sleep(rng.uniform(0.02, 0.5))
        for p in procs:
            os.kill(p.pid, signal.SIGKILL)
    finally:
        for p in procs:
            p.kill()
            p.wait(timeout=10)
    for t in readers:
        t.join(timeout=5)
    for p in procs:
        if p.stdout is not None:
            p.stdout.close()
    assert all(p.returncode == -signal.SIGKILL for p in procs)
    return confirmed


def kill_rounds(db: Path, rounds: int, seed: int) -> int:
    rng = random.Random(seed)
    committed: dict[int, tuple[str, int]] = {}
    for rnd in range(rounds):
        committed.update(_round(db, rnd, rng))
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok", f"round {rnd}"
        rows = {r.id: r for r in RecordStore(db).list()}
        lost = [rid for rid in committed if rid not in rows]
        assert not lost, f"round {rnd}: {len(lost)} committed records lost, e.g. {lost[:5]}"
        for rid, (port, i) in committed.items():
            row = rows[rid]
            assert (row.port, row.artifact_size, row.details["i"]) == (port, i, i), rid
            assert row.details["pad"] == "x" * (i % 300)
    RecordStore(db).add(Record(operation="flash", result="ok", port="after"))  # still works
    return len(committed)


def test_repeated_kills_of_two_writers_lose_nothing_committed(tmp_path: Path) -> None:
    assert kill_rounds(tmp_path / "records.sqlite", rounds=3, seed=1) > 0


@pytest.mark.soak
@pytest.mark.timeout(1800)
def test_repeated_kills_soak(tmp_path: Path) -> None:
    rounds = int(os.environ.get("TINYOPS_SOAK_KILL_ROUNDS", "50"))
    n = kill_rounds(tmp_path / "records.sqlite", rounds=rounds, seed=2)
    print(f"\n{rounds} kill rounds, {n} committed records, none lost")
