"""The ``tinyops`` command line: one sub-command module per area, each with ``--json``.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input, 130 cancelled (Ctrl-C).
Expected failures print one line (``error: …`` plus the fix) and never a traceback; the
mapping is ``tinyops_base.errors.describe``.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Sequence

from app.logging_setup import setup_logging
from fleet_ops.records import OPERATOR_ENV, RECORDS_URL_ENV
from tinyops_base.errors import describe

log = logging.getLogger(__name__)

# Sub-command modules; each defines ``register(subparsers)`` and sets ``func`` on its parser.
# A module that is missing (not built yet) is skipped, so areas can land independently.
COMMAND_MODULES = (
    "app.cli.gui_cmd",
    "app.cli.boards_cmd",
    "app.cli.sim_cmd",
    "app.cli.device_cmds",
    "app.cli.model_cmds",
    "app.cli.provision_cmds",
    "app.cli.records_cmd",
    "app.cli.fleet_cmds",
    "app.cli.rollout_cmd",
    "app.cli.image_cmd",
    "app.cli.firmware_cmd",
)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tinyops")
    except metadata.PackageNotFoundError:  # a source tree that was never installed
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyops",
        description="TinyML device management: boards, models, flashing, live plots.",
    )
    parser.add_argument("--version", action="version", version=f"tinyops {_version()}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("--operator", metavar="NAME",
                        help="operator name for this command's records (default: "
                             "$TINYOPS_OPERATOR, else the name set in the app, else the login)")
    parser.add_argument("--records", metavar="URL",
                        help="where provisioning records go: postgresql://user@host/db, the "
                             "password in $PGPASSWORD or ~/.pgpass, never here (default: "
                             "$TINYOPS_RECORDS_URL, else the app's setting, else the local "
                             "SQLite file)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.register(sub)
    return parser


def report_error(exc: BaseException, as_json: bool) -> int:
    """Print ``exc`` as the user reads it (``tinyops_base.errors.describe``); its exit code."""
    said = describe(exc)
    if as_json:
        print(json.dumps({"ok": False, "error": said.message, "hint": said.hint}))
    line = f"{'cancelled' if said.cancelled else 'error'}: {said.message}"
    if said.hint:
        line += f"\n  fix: {said.hint}"
    print(line, file=sys.stderr)
    return said.exit_code


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    setup_logging(verbose=args.verbose, console=args.command not in (None, "gui"))
    if args.command is None:
        args = parser.parse_args(["gui", *(argv or [])])
    as_json = bool(getattr(args, "json", False))
    overrides = {OPERATOR_ENV: getattr(args, "operator", None),
                 RECORDS_URL_ENV: getattr(args, "records", None)}
    saved = {key: os.environ.get(key) for key, value in overrides.items() if value}
    for key in saved:
        os.environ[key] = str(overrides[key])
    try:
        return _run(args, as_json)
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _run(args: argparse.Namespace, as_json: bool) -> int:
    try:
        result = args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if not describe(exc).expected:
            log.exception("unexpected error in %s", args.command)
            raise
        log.info("%s failed: %s", args.command, exc)
        return report_error(exc, as_json)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
