"""``CI`` is read one way by every test that may skip locally."""

from __future__ import annotations

import pytest
from ci_guard import in_ci, unavailable


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("1", True), ("YES", True),
                                                 ("", False), ("false", False), ("0", False)])
def test_ci_is_read_one_way(monkeypatch: pytest.MonkeyPatch, value: str,
                            expected: bool) -> None:
    monkeypatch.setenv("CI", value)
    assert in_ci() is expected


def test_a_missing_tool_fails_in_ci_and_skips_locally(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="qemu is missing"):
        unavailable("qemu is missing")
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match="qemu is missing"):
        unavailable("qemu is missing")
