"""The JSON Schemas in ``compat/schemas/`` (also reachable as ``schemas/`` at the top).

Full validation uses ``jsonschema`` (about 100 ms to import), so it runs where a person
asked for a check (``compat validate``, the tests).  Loading a saved host profile on the
scheduler's hot path uses :func:`validate_host`, a structural check of the same rules that
matter for matching.
"""
from __future__ import annotations

import functools
import json
import os
from typing import Any, List, Optional

SCHEMA_DIR = os.path.join(os.path.dirname(__file__), "schemas")


@functools.lru_cache(maxsize=None)
def load_schema(name: str) -> dict:
    with open(os.path.join(SCHEMA_DIR, name + ".schema.json"), encoding="utf-8") as fh:
        return json.load(fh)


def full_errors(instance: Any, name: str) -> List[str]:
    """Every jsonschema error as ``<json path>: <message>``."""
    import jsonschema

    validator = jsonschema.Draft202012Validator(load_schema(name))
    out = []
    for err in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path)):
        path = "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.absolute_path)
        out.append(f"{path}: {err.message}")
    return out


def validate_host(data: Any) -> Optional[str]:
    """First structural problem of a host profile, or None."""
    if not isinstance(data, dict):
        return "not a JSON object"
    if data.get("schema") != "compat.host/v1":
        return f"schema is {data.get('schema')!r}, expected 'compat.host/v1'"
    for key in ("os", "cpu"):
        if not isinstance(data.get(key, {}), dict):
            return f"{key}: expected an object"
    for key in ("gpus", "fabrics", "mpi", "runtimes"):
        value = data.get(key)
        if value is not None and not (isinstance(value, list) and all(isinstance(x, dict) for x in value)):
            return f"{key}: expected a list of objects or null"
    for key in ("gpus", "mpi"):
        for i, item in enumerate(data.get(key) or []):
            need = "vendor" if key == "gpus" else "implementation"
            if not isinstance(item.get(need), str):
                return f"{key}[{i}].{need}: missing"
    return None
