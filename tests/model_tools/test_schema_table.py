"""The checked-in FlatBuffer field table (``model_tools/schema/tflite_schema.json``) against
TFLite's own generated code: regenerated from the schema module it names, every slot checked
against the generated *builder* functions, and every scalar field read from real models
through the table compared with the generated reader's value."""

from __future__ import annotations

import importlib
import json
import struct

import pytest

from model_tools.fb_schema import SCALARS, TABLE_PATH, generated_module, tflite_schema
from model_tools.schema import generate_table


class _Recorder:
    """Stands in for ``flatbuffers.Builder``: records ``Prepend<Type>Slot(slot, ...)``."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, int]] = []

    def __getattr__(self, name: str):
        return lambda slot, *args: self.calls.append((name, slot))


def test_checked_in_table_is_what_the_generator_writes() -> None:
    table = json.loads(TABLE_PATH.read_text(encoding="utf-8"))
    module = next((m for m in generate_table.SCHEMA_MODULES
                   if m.split(".")[0] == table["source"]), None)
    assert module is not None, table["source"]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        pytest.skip(f"{module} is not installed")
    regenerated = generate_table.render(generate_table.table_from_module(mod))
    assert regenerated == TABLE_PATH.read_text(encoding="utf-8"), (
        "the TFLite schema changed: run python -m model_tools.schema.generate_table")


def test_every_slot_matches_the_generated_builder() -> None:
    gen = generated_module()
    schema = tflite_schema()
    checked = 0
    for table, fields in schema.tables.items():
        for f in fields:
            rec = _Recorder()
            getattr(gen, f"{table}Add{f.name}")(rec, 0)
            (method, slot), = rec.calls
            assert f.voffset == 4 + 2 * slot, (table, f.name)
            if f.kind == "scalar":
                assert method == f"Prepend{f.scalar}Slot", (table, f.name, method)
            else:
                assert method == "PrependUOffsetTRelativeSlot", (table, f.name, method)
            if f.kind.startswith("vector"):
                assert hasattr(getattr(gen, table), f"{f.name}Length"), (table, f.name)
            checked += 1
    assert checked > 300 and {"Model", "Tensor", "Operator", "Buffer"} <= set(schema.tables)
    assert len(schema.enums["BuiltinOperator"]) > 150


def _read_scalar(buf: bytes, pos: int, voffset: int, scalar: str, default: object) -> object:
    vt = pos - struct.unpack_from("<i", buf, pos)[0]
    vt_size = struct.unpack_from("<H", buf, vt)[0]
    rel = struct.unpack_from("<H", buf, vt + voffset)[0] if voffset < vt_size else 0
    return struct.unpack_from(SCALARS[scalar][0], buf, pos + rel)[0] if rel else default


def test_scalar_fields_of_real_models_read_the_same_through_the_table(example_tflite) -> None:
    gen = generated_module()
    schema = tflite_schema()
    model = gen.Model.GetRootAs(example_tflite, 0)
    objects = [("Model", model)]
    sg = model.Subgraphs(0)
    objects += [("Tensor", sg.Tensors(i)) for i in range(sg.TensorsLength())]
    objects += [("Operator", sg.Operators(i)) for i in range(sg.OperatorsLength())]
    objects += [("OperatorCode", model.OperatorCodes(i))
                for i in range(model.OperatorCodesLength())]
    objects += [("QuantizationParameters", t.Quantization()) for _, t in objects[1:]
                if isinstance(t, gen.Tensor) and t.Quantization() is not None]
    compared = 0
    for table, obj in objects:
        for f in schema.tables[table]:
            if f.kind != "scalar":
                continue
            ours = _read_scalar(example_tflite, obj._tab.Pos, f.voffset, f.scalar, None)
            if ours is not None:
                assert ours == getattr(obj, f.name)(), (table, f.name)
                compared += 1
    assert compared > 50
