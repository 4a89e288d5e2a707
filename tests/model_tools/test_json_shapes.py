"""Files read as JSON that parse but are not objects: refused or ignored, never crash later."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from model_tools.card import card_path, read_card, write_card
from model_tools.errors import InvalidModelError
from model_tools.loading import load_model


def test_a_card_that_is_not_an_object_is_no_card(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    card_path(model).write_text("[1, 2]", encoding="utf-8")
    assert read_card(model) is None  # export() calls card.get(...) on what it gets


def test_a_written_card_reads_back(tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    write_card(model, {"sha256": "ab"})
    card = read_card(model)
    assert card is not None and card["sha256"] == "ab"


@pytest.mark.parametrize("config", ["[]", "3", '"model"'])
def test_a_keras_file_whose_config_is_not_an_object_is_refused(tmp_path: Path,
                                                                config: str) -> None:
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", config)
    with pytest.raises(InvalidModelError, match="not an object"):
        load_model(path, load_float=False)
