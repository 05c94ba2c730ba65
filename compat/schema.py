"""The JSON Schemas in ``compat/schemas/`` (also reachable as ``schemas/`` at the top).

Full validation uses ``jsonschema`` (about 100 ms to import), so it runs where a person
asked for a check (``compat validate``, the tests).  Loading a saved host profile on the
scheduler's hot path uses :func:`validate_host`: :func:`first_error` interprets the same
schema file with the subset of JSON Schema 2020-12 the host schema uses (listed in
``KEYWORDS``; a schema using any other keyword is refused, so the two cannot drift apart
silently).  ``tests/test_host_schema.py`` runs both on generated profiles and asserts they
agree.
"""
from __future__ import annotations

import functools
import json
import os
import re

from compat.errors import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, List, Optional

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schemas")

#: The keywords :func:`first_error` understands (annotations only: the ones without effect).
KEYWORDS = frozenset({
    "$schema", "$id", "$defs", "$ref", "title", "description",
    "type", "enum", "const", "pattern", "minLength", "maxLength", "minimum", "maximum",
    "properties", "additionalProperties", "required", "propertyNames", "maxProperties",
    "items", "maxItems", "minItems",
})


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    with open(os.path.join(SCHEMA_DIR, name + ".schema.json"), encoding="utf-8") as fh:
        return json.load(fh)


def full_errors(instance: Any, name: str) -> List[str]:
    """Every jsonschema error as ``<json path>: <message>``."""
    # start-up: jsonschema costs ~100 ms to import (README)
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(name))
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(map(str, e.absolute_path))):
        out.append(f"{json_path(err.absolute_path)}: {err.message}")
    return out


def json_path(parts) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in parts)


def validate_host(data: Any) -> Optional[str]:
    """First schema violation of a host profile as ``<json path>: <problem>``, or None."""
    return first_error(data, "host")


def first_error(instance: Any, name: str) -> Optional[str]:
    """The first violation of schema ``name`` as ``<json path>: <problem>``, or None."""
    problem = first_problem(instance, name)
    return None if problem is None else f"{json_path(problem[0])}: {problem[1]}"


def first_problem(instance: Any, name: str):
    """(path as a list, message) of the first violation of schema ``name`` in document order,
    or None; same verdict as jsonschema for the keywords in ``KEYWORDS``, without importing it."""
    root = load_schema(name)
    return _check(instance, root, root, [])


# -- the interpreter ---------------------------------------------------------------------------

_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    # JSON Schema: 1.0 is an integer; a boolean is never a number
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def _same(a, b) -> bool:
    """JSON equality: ``true`` is not ``1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return a == b


def _short(value) -> str:
    return printable(json.dumps(value, ensure_ascii=False)[:80], 60)


def _check(value, schema, root, path):
    """(path, message) of the first problem of ``value`` under ``schema``, or None."""
    if schema is True:
        return None
    if schema is False:
        return path, "not allowed here"
    unknown = set(schema) - KEYWORDS
    if unknown:
        raise ValueError(f"schema keyword(s) {sorted(unknown)} not supported by compat.schema")
    if "$ref" in schema:
        problem = _check(value, _resolve(schema["$ref"], root), root, path)
        if problem:
            return problem
    for check in (_check_type, _check_value, _check_string, _check_number):
        message = check(value, schema)
        if message:
            return path, message
    if isinstance(value, dict):
        return _check_object(value, schema, root, path)
    if isinstance(value, list):
        return _check_array(value, schema, root, path)
    return None


def _resolve(ref: str, root):
    if not ref.startswith("#/"):
        raise ValueError(f"schema $ref {ref!r} not supported by compat.schema")
    node = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _check_type(value, schema):
    if "type" not in schema:
        return None
    types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
    if not any(_TYPES[t](value) for t in types):
        return f"{_short(value)} is not of type {' or '.join(types)}"
    return None


def _check_value(value, schema):
    if "const" in schema and not _same(value, schema["const"]):
        return f"{_short(value)} is not {json.dumps(schema['const'])}"
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        return f"{_short(value)} is not one of {', '.join(json.dumps(e) for e in schema['enum'])}"
    return None


def _check_string(value, schema):
    if not isinstance(value, str):
        return None
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        return f"longer than {schema['maxLength']} characters"
    if "minLength" in schema and len(value) < schema["minLength"]:
        return f"shorter than {schema['minLength']} characters"
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return f"{_short(value)} does not match {schema['pattern']}"
    return None


def _check_number(value, schema):
    if not _TYPES["number"](value):
        return None
    if "minimum" in schema and value < schema["minimum"]:
        return f"{_short(value)} is less than {schema['minimum']}"
    if "maximum" in schema and value > schema["maximum"]:
        return f"{_short(value)} is more than {schema['maximum']}"
    return None


def _check_object(value, schema, root, path):
    if "maxProperties" in schema and len(value) > schema["maxProperties"]:
        return path, f"more than {schema['maxProperties']} properties"
    props = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    for key, item in value.items():
        if "propertyNames" in schema:
            problem = _check(key, schema["propertyNames"], root, path)
            if problem:
                return path, f"property name {_short(key)}: {problem[1]}"
        if key in props:
            problem = _check(item, props[key], root, path + [key])
        elif extra is False:
            return path, f"unexpected property {_short(key)}"
        else:
            problem = _check(item, extra, root, path + [key])
        if problem:
            return problem
    for key in schema.get("required", ()):      # after the values: a wrong "schema" says so first
        if key not in value:
            return path, f"{key!r} is a required property"
    return None


def _check_array(value, schema, root, path):
    if "maxItems" in schema and len(value) > schema["maxItems"]:
        return path, f"more than {schema['maxItems']} items"
    if "minItems" in schema and len(value) < schema["minItems"]:
        return path, f"fewer than {schema['minItems']} items"
    if "items" in schema:
        for i, item in enumerate(value):
            problem = _check(item, schema["items"], root, path + [i])
            if problem:
                return problem
    return None
