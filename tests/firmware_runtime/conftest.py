"""Fixtures for the TinyOps firmware (firmware/) built with TFLM and run in QEMU.

Builds are cached across tests, sessions and CI runs (``device_drivers.firmware.build``): the
first session compiles (minutes), later ones find the ELF by the hash of its inputs. A missing
toolchain, emulator or source mirror skips locally and fails in CI (``CI=true``, or
``TINYOPS_FIRMWARE_MIRROR`` set, which is what CI's ``.ci/run`` does).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable

import pytest
from ci_guard import in_ci

from device_drivers.errors import TinyOpsError


def must_run() -> bool:
    return in_ci() or bool(os.environ.get("TINYOPS_FIRMWARE_MIRROR"))


def unavailable(reason: str) -> None:
    if must_run():
        pytest.fail(reason)
    pytest.skip(reason)


COLD_BUILD_TIMEOUT_S = 1800
"""The first test that needs a build compiles it (cold: minutes on 2 busy cores); the
project's 300 s per-test timeout would cut it off."""


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/firmware_runtime/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.firmware)
            if item.get_closest_marker("timeout") is None:
                item.add_marker(pytest.mark.timeout(COLD_BUILD_TIMEOUT_S))


_BUILDS: dict[tuple[str, str, str], object] = {}


@pytest.fixture(scope="session")
def fw_build() -> Callable[..., object]:
    """``fw_build("cortex-m4", "cmsis-nn", "selftest")`` -> BuildResult (once per session)."""

    def get(cpu: str, kernels: str, app: str = "selftest"):
        key = (cpu, kernels, app)
        if key not in _BUILDS:
            if shutil.which("qemu-system-arm") is None:
                unavailable("qemu-system-arm is missing: apt-get install qemu-system-arm")
            from device_drivers.firmware.build import build

            try:
                _BUILDS[key] = build(cpu, kernels, app)
            except TinyOpsError as exc:
                unavailable(f"the firmware cannot be built here: {exc}")
        return _BUILDS[key]

    return get
