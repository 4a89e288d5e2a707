"""Station settings: one JSON file the app and the CLI share (the operator name)."""

from __future__ import annotations

import getpass
import json

import pytest

from device_drivers import settings
from fleet_ops.records import OPERATOR_ENV, current_operator


@pytest.fixture(autouse=True)
def _no_env_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(OPERATOR_ENV, raising=False)


def test_the_stored_operator_is_used_and_kept_with_other_keys() -> None:
    settings.save(other={"a": 1})
    assert settings.set_operator("  Ada \t Lovelace ") == "Ada Lovelace"
    assert current_operator() == "Ada Lovelace"
    data = json.loads(settings.settings_path().read_text())
    assert data == {"operator": "Ada Lovelace", "other": {"a": 1}}
    assert not list(settings.settings_path().parent.glob(".settings-*"))  # no temp left


def test_env_beats_the_stored_name_and_blank_clears_it(monkeypatch: pytest.MonkeyPatch) -> None:
    settings.set_operator("Ada")
    monkeypatch.setenv(OPERATOR_ENV, "Grace")
    assert current_operator() == "Grace"
    monkeypatch.delenv(OPERATOR_ENV)
    assert settings.set_operator("   ") is None
    assert settings.stored_operator() is None
    assert current_operator() == getpass.getuser()


@pytest.mark.parametrize("content", ["{not json", "[1, 2]", '{"operator": 5}'])
def test_a_damaged_file_falls_back_to_the_login(content: str) -> None:
    settings.settings_path().write_text(content)
    assert current_operator() == getpass.getuser()
    settings.set_operator("Ada")  # and it can be written again
    assert current_operator() == "Ada"
