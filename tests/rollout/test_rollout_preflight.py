"""Preflight on the bundled example model against device statuses: fits, operators, board
entries, a previous model to go back to, garbage statuses (a reason, never an exception)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from device_drivers.errors import InputError
from fleet_ops.rollout.preflight import check_device, model_facts

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "resources/examples/vibration/model_int8.tflite"
OPS = ["CONV_2D", "EXPAND_DIMS", "FULLY_CONNECTED", "MAX_POOL_2D", "MEAN", "RESHAPE",
       "SOFTMAX", "QUANTIZE"]


def _status(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"state": "online", "model_sha256": "11" * 32, "board": "virtual",
                            "ops": OPS, "arena_max": 64 * 1024, "model_max": 256 * 1024,
                            "update": "idle"}
    base.update(kw)
    return base


@pytest.fixture(scope="module")
def model() -> Any:
    return model_facts(MODEL)


def test_model_facts_from_file_and_card(model: Any) -> None:
    assert model.size == MODEL.stat().st_size and len(model.sha256) == 64
    assert model.arena_method == "measured" and model.arena_bytes == 5872  # the card's figure
    assert {"CONV_2D", "EXPAND_DIMS", "SOFTMAX"} <= model.ops
    assert model.baseline and model.baseline["labels"] == ["normal", "imbalance", "bearing_fault"]


def test_not_a_model_is_refused_before_anything(tmp_path: Path) -> None:
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(MODEL.read_bytes()[:4000])
    with pytest.raises(InputError, match="not a valid TFLite model"):
        model_facts(bad)


def test_a_fitting_device_goes(model: Any) -> None:
    assert check_device(model, "d1", _status()) == []
    assert check_device(model, "d1", _status(model_sha256=model.sha256, ops=[])) == []


@pytest.mark.parametrize(("change", "reason"), [
    ({"model_max": 8000}, "the device takes at most 8000 B"),
    ({"arena_max": 4096}, "5872 B arena (measured), the device has 4096 B"),
    ({"ops": OPS[:2]}, "its runtime lacks FULLY_CONNECTED, MAX_POOL_2D, MEAN, RESHAPE, SOFTMAX"),
    ({"ops": None}, "does not report its runtime's operators"),
    ({"model_sha256": None}, "nothing to roll back to"),
    ({"update": "receiving"}, "receiving another update"),
    ({"board": None, "arena_max": None, "model_max": None}, "cannot tell whether"),
    ({"board": "nicla_sense_me", "arena_max": None, "model_max": None}, None),
])
def test_reasons(model: Any, change: dict[str, Any], reason: str | None) -> None:
    got = check_device(model, "d1", _status(**change))
    if reason is None:
        assert got == []
    else:
        assert any(reason in r for r in got), got


def test_board_entry_that_is_too_small(model: Any) -> None:
    """A registry board whose free flash cannot hold the model (fit_verdict 'does not fit')."""
    import dataclasses

    from fleet_ops.rollout import preflight as pf

    boards = pf._boards()
    tiny = dataclasses.replace(boards["nicla_sense_me"], id="tiny_test", flash=262144 + 4096)
    boards["tiny_test"] = tiny
    try:
        got = check_device(model, "d1", _status(board="tiny_test", arena_max=None,
                                                 model_max=None))
        assert any("does not fit its board tiny_test" in r and "flash" in r for r in got), got
    finally:
        del boards["tiny_test"]


@pytest.mark.parametrize("status", [
    None, [], "online", {"state": "online", "ops": "CONV_2D"},
    _status(model_sha256="zz"), _status(arena_max=-1), _status(model_max="big"),
    _status(ops=["x" * 200]), _status(board=7), _status(arena_max=True),
])
def test_garbage_status_is_a_reason(model: Any, status: Any) -> None:
    got = check_device(model, "d1", status)
    assert got and ("status" in got[0]), got
