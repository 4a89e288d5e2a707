"""The TFLite FlatBuffer schema as data, for the verifier (``verify.py``).

For every table: which vtable slots hold scalars, strings, vectors, sub-tables or unions; for
every enum its values. The table is generated once from the ``schema_py_generated`` module
that tflite-micro ships (``python -m model_tools.schema.generate_table``) and checked in as
``model_tools/schema/tflite_schema.json``; nothing parses generated source at run time.
``generated_module()`` gives the flatc classes themselves (the object API ``verify`` uses).
"""

from __future__ import annotations

import functools
import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

# flatbuffers.number_types.<Name>Flags -> (struct format, size)
SCALARS: dict[str, tuple[str, int]] = {
    "Bool": ("<?", 1), "Uint8": ("<B", 1), "Int8": ("<b", 1), "Uint16": ("<H", 2),
    "Int16": ("<h", 2), "Uint32": ("<I", 4), "Int32": ("<i", 4), "Uint64": ("<Q", 8),
    "Int64": ("<q", 8), "Float32": ("<f", 4), "Float64": ("<d", 8),
}

_SCHEMA_MODULES = (
    "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
    "ai_edge_litert.schema_py_generated",  # where tflite-micro has no wheel (LiteRT's copy)
    "tensorflow.lite.python.schema_py_generated",
)
TABLE_PATH = Path(__file__).with_name("schema") / "tflite_schema.json"


@dataclass(frozen=True)
class Field:
    name: str
    voffset: int  # byte offset of the slot in the vtable (4, 6, 8, ...)
    kind: str  # scalar | string | table | union | vector_scalar | vector_string | vector_table
    scalar: str | None = None  # for scalar / vector_scalar
    ref: str | None = None  # table name (table, vector_table) or union enum name (union)

    @property
    def inline_size(self) -> int:
        return SCALARS[self.scalar][1] if self.kind == "scalar" and self.scalar else 4


@dataclass
class Schema:
    tables: dict[str, list[Field]] = field(default_factory=dict)
    enums: dict[str, dict[int, str]] = field(default_factory=dict)
    module: str = ""

    def union_member(self, union: str, type_value: int) -> str | None:
        return self.enums.get(union, {}).get(type_value)


def schema_from_table(table: dict[str, Any]) -> Schema:
    """A ``Schema`` from the generated table's JSON (see ``schema/generate_table.py``)."""
    schema = Schema(module=str(table.get("source", "")))
    for name, rows in table["tables"].items():
        schema.tables[name] = [Field(n, int(v), k, s, r) for n, v, k, s, r in rows]
    for name, members in table["enums"].items():
        schema.enums[name] = {int(v): k for v, k in members.items()}
    return schema


def generated_module() -> ModuleType:
    """The generated TFLite schema classes (tflite-micro's copy first, then LiteRT's: no
    TensorFlow import)."""
    errors = []
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - depends on what is installed
            errors.append(f"{name}: {exc}")
    raise ImportError("no TFLite schema module found: " + "; ".join(errors))


@functools.lru_cache(maxsize=1)
def tflite_schema() -> Schema:
    """The checked-in table (``model_tools/schema/tflite_schema.json``): no parsing of
    generated source at run time."""
    return schema_from_table(json.loads(TABLE_PATH.read_text(encoding="utf-8")))
