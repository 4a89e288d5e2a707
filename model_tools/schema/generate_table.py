"""Generate ``tflite_schema.json``, the FlatBuffer field table the verifier reads.

Run once when the TFLite schema changes (a new TensorFlow / tflite-micro), then commit the JSON:

    uv run python -m model_tools.schema.generate_table          # rewrite the table
    uv run python -m model_tools.schema.generate_table --check  # exit 1 if it is out of date

Source: the ``schema_py_generated`` module that tflite-micro ships (TensorFlow's copy if
tflite-micro is absent), i.e. ``flatc --python`` output of TFLite's ``schema.fbs``. flatc
writes every accessor from a few fixed templates, so each one says what its field is: the
vtable slot (``self._tab.Offset(N)``), scalar type (``number_types.<T>Flags``), and whether it
is a string, a sub-table, a union or a vector of scalars, strings or tables. For every table
the JSON lists ``[name, vtable offset, kind, scalar type, referenced table or union]``; for
every enum its values. ``tests/model_tools/test_schema_table.py`` regenerates and compares,
and checks every slot against the generated *builder* functions (a separate code path).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import inspect
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

TABLE_PATH = Path(__file__).with_name("tflite_schema.json")
SCHEMA_MODULES = (
    "tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
    "tensorflow.lite.python.schema_py_generated",
)

_CLASS_RE = re.compile(r"^class (\w+)\(object\):\n(.*?)(?=^\S)", re.M | re.S)
_METHOD_RE = re.compile(r"^    def (\w+)\(self(, j)?\):\n(.*?)(?=^    \S|\Z)", re.M | re.S)
_OFFSET_RE = re.compile(r"self\._tab\.Offset\((\d+)\)")
_FLAGS_RE = re.compile(r"flatbuffers\.number_types\.(\w+)Flags")
_OBJ_RE = re.compile(r"obj = (\w+)\(\)")
_ENUM_MEMBER_RE = re.compile(r"^    (\w+) = (-?\d+)\s*$", re.M)
_CREATOR_RE = re.compile(r"= (\w+)Creator\(self\.\w+Type, \w+\.(\w+)\(\)\)")
_SKIP_SUFFIXES = ("Length", "AsNumpy", "IsNone", "NestedRoot")

Row = list[Any]  # [name, voffset, kind, scalar | None, ref | None]


def _classify(name: str, with_index: bool, body: str, unions: dict[str, str]) -> Row | None:
    m = _OFFSET_RE.search(body)
    if not m or name.endswith(_SKIP_SUFFIXES):
        return None
    voff = int(m.group(1))
    flags = _FLAGS_RE.findall(body.replace("UOffsetTFlags", ""))
    obj = _OBJ_RE.search(body)
    if "self._tab.Union(" in body:
        return [name, voff, "union", None, unions.get(name)]
    if "self._tab.Vector(o)" in body and with_index:
        if "self._tab.Indirect(x)" in body and obj:
            return [name, voff, "vector_table", None, obj.group(1)]
        if "self._tab.String(" in body:
            return [name, voff, "vector_string", None, None]
        if flags:
            return [name, voff, "vector_scalar", flags[0], None]
        raise ValueError(f"unrecognised vector accessor {name}")
    if "self._tab.String(o + self._tab.Pos)" in body:
        return [name, voff, "string", None, None]
    if "self._tab.Indirect(o + self._tab.Pos)" in body and obj:
        return [name, voff, "table", None, obj.group(1)]
    if "self._tab.Get(" in body and flags and "o + self._tab.Pos" in body:
        return [name, voff, "scalar", flags[0], None]
    raise ValueError(f"unrecognised accessor {name}")


def table_from_module(module: ModuleType) -> dict[str, Any]:
    """The field table of a flatc-generated Python schema module."""
    source = inspect.getsource(module)
    classes = {m.group(1): m.group(2) for m in _CLASS_RE.finditer(source + "\nEND\n")}
    unions = {method: enum for enum, method in _CREATOR_RE.findall(source)}
    tables: dict[str, list[Row]] = {}
    enums: dict[str, dict[str, str]] = {}
    for cname, body in sorted(classes.items()):
        if "self._tab" not in body:
            members = _ENUM_MEMBER_RE.findall(body)
            if members:
                enums[cname] = {v: k for k, v in sorted(members, key=lambda kv: int(kv[1]))}
            continue
        if cname.endswith("T") and cname[:-1] in classes:
            continue  # object-API twin of a table
        rows: list[Row] = []
        seen: set[int] = set()
        for mm in _METHOD_RE.finditer(body + "\nEND"):
            row = _classify(mm.group(1), bool(mm.group(2)), mm.group(3), unions)
            if row is not None and row[1] not in seen:
                seen.add(row[1])
                rows.append(row)
        tables[cname] = sorted(rows, key=lambda r: r[1])
    if "Model" not in tables or "BuiltinOptions" not in enums:
        raise ValueError(f"{module.__name__} does not look like the TFLite schema")
    return {"source": module.__name__.split(".")[0],
            "source_sha256": hashlib.sha256(source.encode()).hexdigest(),
            "tables": tables, "enums": enums}


def load_module() -> ModuleType:
    errors = []
    for name in SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
    raise ImportError("no TFLite schema module found: " + "; ".join(errors))


def render(table: dict[str, Any]) -> str:
    """Stable JSON, one table or enum per line (readable diffs)."""
    lines = ["{", f'  "source": {json.dumps(table["source"])},',
             f'  "source_sha256": {json.dumps(table["source_sha256"])},', '  "tables": {']
    for key in ("tables", "enums"):
        items = list(table[key].items())
        for i, (name, value) in enumerate(items):
            sep = "," if i < len(items) - 1 else ""
            lines.append(f"    {json.dumps(name)}: {json.dumps(value, separators=(',', ':'))}"
                         + sep)
        lines.append("  }," if key == "tables" else "  }")
        if key == "tables":
            lines.append('  "enums": {')
    lines.append("}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the checked-in table differs")
    args = ap.parse_args(argv)
    text = render(table_from_module(load_module()))
    if args.check:
        same = TABLE_PATH.is_file() and TABLE_PATH.read_text(encoding="utf-8") == text
        print("up to date" if same else f"{TABLE_PATH} is out of date: regenerate it")
        return 0 if same else 1
    TABLE_PATH.write_text(text, encoding="utf-8")
    print(f"wrote {TABLE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
