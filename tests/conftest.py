"""Test isolation: every test gets its own TinyOps home (settings, records, runtime dir)."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@pytest.fixture(autouse=True)
def tinyops_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch):
    home = tmp_path_factory.mktemp("tinyops-home")
    monkeypatch.setenv("TINYOPS_HOME", str(home))
    return home
