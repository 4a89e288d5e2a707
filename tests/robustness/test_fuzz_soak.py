"""The fuzz tests at robustness volume: ≥ 10⁵ examples per property (``-m soak``).

Reuses the property tests as they are (they honour ``TINYOPS_FUZZ_EXAMPLES``): the
telemetry parser's (every format, auto-detection, framing, bounds) and the model
loading/verification ones; runs them in a child pytest with the example count raised.
``TINYOPS_SOAK_FUZZ_EXAMPLES`` changes the count (default 100 000).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FUZZ_FILES = [
    "tests/device_drivers/test_telemetry_fuzz.py",
    "tests/robustness/test_model_fuzz.py",
]


@pytest.mark.soak
@pytest.mark.timeout(12 * 3600)
def test_fuzz_properties_hold_for_a_hundred_thousand_examples_each() -> None:
    examples = os.environ.get("TINYOPS_SOAK_FUZZ_EXAMPLES", "100000")
    env = dict(os.environ, TINYOPS_FUZZ_EXAMPLES=examples)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", *FUZZ_FILES, "-q", "-p", "no:cacheprovider",
         "--timeout", "0", "-m", "not soak"],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    tail = "\n".join(proc.stdout.strip().splitlines()[-15:])
    print(f"\nfuzz run with TINYOPS_FUZZ_EXAMPLES={examples}:\n{tail}")
    assert proc.returncode == 0, tail + proc.stderr[-2000:]
    assert " failed" not in tail and " passed" in tail
