"""One arena figure: analyze, the quantize report, the model card, the export header and the
fit verdict all show ``arena_bytes`` as ``model_tools.analyze.ARENA_DEFINITION`` defines it
(TFLM's minimum, no margin) - the same number for the same model."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from model_tools.analyze import ARENA_DEFINITION, BoardLimits, analyze, arena_figure
from model_tools.card import card_path
from model_tools.export import export_model
from model_tools.tflm import tflm_available

pytestmark = pytest.mark.skipif(not tflm_available(), reason="tflite-micro not installed")


def test_every_place_shows_the_same_arena(quantized, tmp_path: Path) -> None:
    report, out, _ = quantized
    board = BoardLimits("b", flash=1 << 20, ram=256 * 1024, reserve_ram=32 * 1024)
    analysis = analyze(out, board=board)
    card = json.loads(card_path(out).read_text())
    result = export_model(out, "c", tmp_path / "c")
    header = (tmp_path / "c" / f"{result.name}.h").read_text()
    macro = re.search(rf"#define {result.name.upper()}_ARENA_MIN (\d+)u", header)
    assert macro, header
    figures = {"analyze": analysis["arena_bytes"], "report": report.arena_bytes,
               "card": card["arena_bytes"], "header": int(macro.group(1)),
               "fit": analysis["fit"]["ram"]["needed"]}
    assert len(set(figures.values())) == 1, figures
    assert analysis["arena_method"] == report.arena_method == card["arena_method"] == "measured"
    assert analysis["arena_note"] == card["arena_note"] == ARENA_DEFINITION
    assert "no margin added" in header and figures["analyze"] % 16 == 0


def test_arena_figure_names_its_method() -> None:
    assert arena_figure(4096, "measured")["arena_note"] == ARENA_DEFINITION
    assert "estimate" in arena_figure(4096, "estimate")["arena_note"]
    with pytest.raises(ValueError):
        arena_figure(4096, "guess")


def test_an_estimated_arena_is_not_exported_as_tflms_minimum(example_dir: Path,
                                                             tmp_path: Path) -> None:
    model = tmp_path / "m.tflite"
    model.write_bytes((example_dir / "model_int8.tflite").read_bytes())
    card = json.loads((example_dir / "model_int8.tflite.card.json").read_text())
    card.update(arena_figure(9000, "estimate"))
    card_path(model).write_text(json.dumps(card))
    result = export_model(model, "c", tmp_path / "c")
    header = (tmp_path / "c" / f"{result.name}.h").read_text()
    assert "_ARENA_ESTIMATE 9000u" in header and "_ARENA_MIN" not in header
