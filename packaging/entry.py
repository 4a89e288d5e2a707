"""The frozen app's entry point (PyInstaller): ``tinyops`` CLI and GUI in one executable.

TinyOps starts helper processes as ``sys.executable -m <module>`` (the TFLM sandbox, the
virtual board's interpreter, the model worker). In the frozen app ``sys.executable`` is this
program, so ``tinyops -m <module> ARGS`` runs that module as ``__main__``, like Python would;
only TinyOps's own modules are accepted.
"""

from __future__ import annotations

import multiprocessing
import runpy
import sys

CHILD_PACKAGES = ("app.", "device_drivers.", "fleet_ops.", "model_tools.", "tinyops_base.")


def main() -> int:
    multiprocessing.freeze_support()
    argv = sys.argv
    if len(argv) >= 3 and argv[1] == "-m":
        module = argv[2]
        if not module.startswith(CHILD_PACKAGES):
            print(f"error: {module} is not a TinyOps module", file=sys.stderr)
            return 2
        sys.argv = [argv[0], *argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    from app.cli import main as cli_main

    return cli_main()


if __name__ == "__main__":
    sys.exit(main())
