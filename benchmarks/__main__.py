"""``python -m benchmarks [--quick] [--json] [--only NAME ...]``: every performance claim, measured.

Prints a table (each figure beside its target and the limit or peer it is compared with);
with ``--json`` the last line of stdout is one JSON object holding every key.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks import BENCHMARKS, KEYS
from benchmarks.common import Figure, TempHome, machine
from benchmarks.report import render_table, to_json


def _load(name: str) -> Callable[[bool], list[Figure]]:
    import importlib

    return importlib.import_module(f"benchmarks.{name}").run  # type: ignore[no-any-return]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true",
                        help="fewer repeats and shorter runs (< 10 min on 2 cores)")
    parser.add_argument("--json", action="store_true",
                        help="end with one JSON line holding every figure")
    parser.add_argument("--only", nargs="+", choices=BENCHMARKS, metavar="NAME",
                        help=f"run only these benchmarks ({', '.join(BENCHMARKS)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    started = time.monotonic()
    host = machine()
    print(f"TinyOps benchmarks ({'quick' if args.quick else 'full'}) on {host['cpu']}, "
          f"{host['cores']} cores, {host['os']}, Python {host['python']}, "
          f"load {host['load_avg']}", flush=True)
    figures: list[Figure] = []
    errors: dict[str, str] = {}
    for name in args.only or BENCHMARKS:
        t0 = time.monotonic()
        load = machine()["load_avg"][:1]
        print(f"… {name}", end="", flush=True)
        try:
            with TempHome():
                got = _load(name)(args.quick)
        except Exception as exc:  # one broken benchmark must not hide the others
            errors[name] = f"{type(exc).__name__}: {exc}"
            logging.debug("benchmark %s failed", name, exc_info=True)
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                traceback.print_exc()
            got = [Figure(key, None, note=f"failed: {errors[name]}") for key in KEYS[name]]
        for figure in got:  # how busy the shared machine was when this was measured
            figure.extra.setdefault("load_1min_before", load[0] if load else None)
        figures.extend(got)
        print(f" {time.monotonic() - t0:.0f} s", flush=True)
    elapsed = time.monotonic() - started
    print()
    print(render_table(figures))
    print(f"\n{len(figures)} figures in {elapsed:.0f} s; "
          f"load average now {machine()['load_avg']}")
    for name, err in errors.items():
        print(f"FAILED {name}: {err}")
    if args.json:
        print(json.dumps(to_json(figures, host, args.quick, elapsed, errors)))
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
