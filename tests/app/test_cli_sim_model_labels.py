"""A virtual board started with ``--model FILE`` reports the labels of that model's card
(so the fleet can match it to the card's drift baseline)."""

from __future__ import annotations

import json
import shutil

from device_drivers import paths
from device_drivers.link import DeviceSession
from device_drivers.virtual.board import VirtualBoard

EXAMPLE = paths.resources_dir() / "examples" / "vibration"


def test_the_model_card_labels_are_reported(tmp_path) -> None:
    model = tmp_path / "mine.tflite"
    shutil.copy(EXAMPLE / "model_int8.tflite", model)
    card = json.loads((EXAMPLE / "model_int8.tflite.card.json").read_text())
    card["labels"] = ["ok", "wobble", "grind"]
    (tmp_path / "mine.tflite.card.json").write_text(json.dumps(card))
    with VirtualBoard(board="nano33ble", state_dir=tmp_path / "s", model=model) as vb, \
            DeviceSession.open(vb.port) as session:
        assert session.model_info().labels == ["ok", "wobble", "grind"]


def test_without_a_card_labels_txt_still_counts(tmp_path) -> None:
    model = tmp_path / "bare.tflite"
    shutil.copy(EXAMPLE / "model_int8.tflite", model)
    (tmp_path / "labels.txt").write_text("a\nb\nc\n")
    with VirtualBoard(board="nano33ble", state_dir=tmp_path / "s", model=model) as vb, \
            DeviceSession.open(vb.port) as session:
        assert session.model_info().labels == ["a", "b", "c"]
