"""The TFLite FlatBuffer schema as data, read from the generated Python schema classes.

The verifier (``verify.py``) needs, for every table, which vtable slots hold scalars,
strings, vectors, sub-tables or unions. Rather than keep a hand copy of ``schema.fbs``,
this module reads it from the ``schema_py_generated`` module that tflite-micro ships (or
TensorFlow's copy when tflite-micro is absent): the flatc generator writes every accessor
from a handful of fixed templates, so each one says exactly what its field is.
"""

from __future__ import annotations

import functools
import importlib
import inspect
import re
from dataclasses import dataclass, field
from types import ModuleType

# flatbuffers.number_types.<Name>Flags -> (struct format, size)
SCALARS: dict[str, tuple[str, int]] = {
    "Bool": ("<?", 1), "Uint8": ("<B", 1), "Int8": ("<b", 1), "Uint16": ("<H", 2),
    "Int16": ("<h", 2), "Uint32": ("<I", 4), "Int32": ("<i", 4), "Uint64": ("<Q", 8),
    "Int64": ("<q", 8), "Float32": ("<f", 4), "Float64": ("<d", 8),
}

_SCHEMA_MODULES = (
    "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
)


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


_CLASS_RE = re.compile(r"^class (\w+)\(object\):\n(.*?)(?=^\S)", re.M | re.S)
_METHOD_RE = re.compile(r"^    def (\w+)\(self(, j)?\):\n(.*?)(?=^    \S|\Z)", re.M | re.S)
_OFFSET_RE = re.compile(r"self\._tab\.Offset\((\d+)\)")
_FLAGS_RE = re.compile(r"flatbuffers\.number_types\.(\w+)Flags")
_OBJ_RE = re.compile(r"obj = (\w+)\(\)")
_ENUM_MEMBER_RE = re.compile(r"^    (\w+) = (-?\d+)\s*$", re.M)
_CREATOR_RE = re.compile(r"= (\w+)Creator\(self\.\w+Type, \w+\.(\w+)\(\)\)")
_SKIP_SUFFIXES = ("Length", "AsNumpy", "IsNone", "NestedRoot")


def _classify(name: str, with_index: bool, body: str, unions: dict[str, str]) -> Field | None:
    m = _OFFSET_RE.search(body)
    if not m or name.endswith(_SKIP_SUFFIXES):
        return None
    voff = int(m.group(1))
    flags = _FLAGS_RE.findall(body.replace("UOffsetTFlags", ""))
    obj = _OBJ_RE.search(body)
    if "self._tab.Union(" in body:
        return Field(name, voff, "union", ref=unions.get(name))
    if "self._tab.Vector(o)" in body and with_index:
        if "self._tab.Indirect(x)" in body and obj:
            return Field(name, voff, "vector_table", ref=obj.group(1))
        if "self._tab.String(" in body:
            return Field(name, voff, "vector_string")
        if flags:
            return Field(name, voff, "vector_scalar", scalar=flags[0])
        raise ValueError(f"unrecognised vector accessor {name}")
    if "self._tab.String(o + self._tab.Pos)" in body:
        return Field(name, voff, "string")
    if "self._tab.Indirect(o + self._tab.Pos)" in body and obj:
        return Field(name, voff, "table", ref=obj.group(1))
    if "self._tab.Get(" in body and flags and "o + self._tab.Pos" in body:
        return Field(name, voff, "scalar", scalar=flags[0])
    raise ValueError(f"unrecognised accessor {name}")


def schema_from_module(module: ModuleType) -> Schema:
    source = inspect.getsource(module) + "\nEND\n"
    classes = {m.group(1): m.group(2) for m in _CLASS_RE.finditer(source)}
    schema = Schema(module=module.__name__)
    # Union value accessors (method name -> union enum), from the object API's unpackers.
    unions = {method: enum for enum, method in _CREATOR_RE.findall(source)}
    for cname, body in classes.items():
        if "self._tab" not in body:
            members = _ENUM_MEMBER_RE.findall(body)
            if members:
                schema.enums[cname] = {int(v): k for k, v in members}
            continue
        if cname.endswith("T") and cname[:-1] in classes:
            continue
        fields = []
        seen: set[int] = set()
        for mm in _METHOD_RE.finditer(body + "\nEND"):
            f = _classify(mm.group(1), bool(mm.group(2)), mm.group(3), unions)
            if f is not None and f.voffset not in seen:
                seen.add(f.voffset)
                fields.append(f)
        schema.tables[cname] = sorted(fields, key=lambda f: f.voffset)
    if "Model" not in schema.tables or "BuiltinOptions" not in schema.enums:
        raise ValueError(f"{module.__name__} does not look like the TFLite schema")
    return schema


def generated_module() -> ModuleType:
    """The generated TFLite schema classes (tflite-micro's copy first: no TensorFlow import)."""
    errors = []
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:  # pragma: no cover - depends on what is installed
            errors.append(f"{name}: {exc}")
    raise ImportError("no TFLite schema module found: " + "; ".join(errors))


@functools.lru_cache(maxsize=1)
def tflite_schema() -> Schema:
    return schema_from_module(generated_module())
