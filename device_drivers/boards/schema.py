"""A small JSON Schema checker for the board registry (no third-party dependency).

It implements exactly the keywords ``resources/boards/schema.json`` uses: ``type``,
``required``, ``properties``, ``additionalProperties: false``, ``enum``, ``pattern``,
``minimum``, ``minLength``, ``minItems``, ``items`` and ``$ref`` to ``#/$defs/...``.
An unknown keyword in the schema is a bug in the schema, so it raises.
"""

from __future__ import annotations

import re
from typing import Any

_KNOWN = {
    "$schema", "$id", "$defs", "title", "description", "type", "required", "properties",
    "additionalProperties", "enum", "pattern", "minimum", "minLength", "minItems", "items",
    "$ref",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,),
    "array": (list,),
    "string": (str,),
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
}


def _is_type(value: Any, name: str) -> bool:
    if name in ("integer", "number") and isinstance(value, bool):
        return False
    return isinstance(value, _TYPES[name])


def _where(path: str) -> str:
    return path or "(top level)"


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None,
             path: str = "") -> list[str]:
    """Return every problem found in ``value`` (empty when it matches ``schema``)."""
    root = schema if root is None else root
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"schema uses unsupported keywords: {sorted(unknown)}")
    if "$ref" in schema:
        ref = schema["$ref"]
        if not ref.startswith("#/$defs/"):
            raise ValueError(f"unsupported $ref {ref}")
        return validate(value, root["$defs"][ref.removeprefix("#/$defs/")], root, path)
    problems: list[str] = []
    expected = schema.get("type")
    if expected is not None and not _is_type(value, expected):
        return [f"{_where(path)}: expected {expected}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        choices = ", ".join(str(c) for c in schema["enum"])
        return [f"{_where(path)}: {value!r} is not one of {choices}"]
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            problems.append(f"{_where(path)}: shorter than {schema['minLength']} characters")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            problems.append(f"{_where(path)}: {value!r} does not match {schema['pattern']}")
    if _is_type(value, "number") and "minimum" in schema and value < schema["minimum"]:
        problems.append(f"{_where(path)}: {value} is below {schema['minimum']}")
    if isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            problems.append(f"{_where(path)}: needs at least {schema['minItems']} item(s)")
        if "items" in schema:
            for i, item in enumerate(value):
                problems += validate(item, schema["items"], root, f"{path}[{i}]")
    if isinstance(value, dict):
        for key in schema.get("required", ()):
            if key not in value:
                problems.append(f"{_where(path)}: missing required field {key!r}")
        props = schema.get("properties", {})
        for key, item in value.items():
            sub = f"{path}.{key}" if path else str(key)
            if key in props:
                problems += validate(item, props[key], root, sub)
            elif schema.get("additionalProperties", True) is False:
                problems.append(f"{_where(path)}: unknown field {key!r}")
    return problems
