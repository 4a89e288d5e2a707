"""The ``tinyops`` command line: one sub-command module per area, each with ``--json``.

Exit codes: 0 ok, 1 the operation failed, 2 bad usage or input. Expected failures
print one line (``error: …`` plus the fix) and never a traceback.
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
from device_drivers.records import OPERATOR_ENV, RECORDS_URL_ENV

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
    "app.cli.image_cmd",
    "app.cli.firmware_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tinyops",
        description="TinyML device management: boards, models, flashing, live plots.",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    parser.add_argument("--operator", metavar="NAME",
                        help="operator name for this command's records (default: "
                             "$TINYOPS_OPERATOR, else the name set in the app, else the login)")
    parser.add_argument("--records", metavar="URL",
                        help="where provisioning records go: postgresql://user:password@host/db "
                             "(default: $TINYOPS_RECORDS_URL, else the app's setting, else the "
                             "local SQLite file)")
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


def exit_code_for(exc: BaseException) -> int | None:
    """The CLI exit code for an expected failure, or None for a bug (which gets a traceback)."""
    code = getattr(exc, "exit_code", None)
    if isinstance(code, int):
        return code
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError,
                        FileExistsError, PermissionError)):
        return 2  # a path the user gave cannot be used as given
    return None


def report_error(exc: BaseException, as_json: bool) -> None:
    hint = getattr(exc, "hint", None)
    message = getattr(exc, "message", None) or str(exc)
    if isinstance(exc, OSError) and exc.filename and not hint:
        message = f"{exc.strerror or exc}: {exc.filename}"
        hint = "check the path: pick another file or folder"
    if as_json:
        print(json.dumps({"ok": False, "error": message, "hint": hint}))
    line = f"error: {message}"
    if hint:
        line += f"\n  fix: {hint}"
    print(line, file=sys.stderr)


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
        code = exit_code_for(exc)
        if code is None:
            log.exception("unexpected error in %s", args.command)
            raise
        log.info("%s failed: %s", args.command, exc)
        report_error(exc, as_json)
        return code
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
