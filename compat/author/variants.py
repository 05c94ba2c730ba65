"""Variants: one image and its annotations, from the command line or a variants file."""
from __future__ import annotations

import json
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

from compat.errors import BadInput
from compat.vocab.annotations import PREFIX


class Variant(NamedTuple):
    ref: str
    annotations: Mapping[str, str]
    platform: Optional[Mapping] = None


def full_key(key: str) -> str:
    """``cpu.target`` -> ``org.hpc-compat.cpu.target``; other namespaces stay as written."""
    key = key.strip()
    if key.startswith(("org.", "com.", "io.", "vnd.", "net.")):   # already namespaced
        return key
    return PREFIX + key


def parse_pairs(pairs: Sequence[str], where: str) -> Dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"{where}: {pair!r} is not KEY=VALUE")
        out[full_key(key)] = value.strip()
    return out


def from_command_line(items: Sequence[Sequence[str]]) -> List[Variant]:
    """``--variant REF K=V ...`` (repeatable) -> variants in order."""
    out = []
    for item in items:
        ref, pairs = item[0], item[1:]
        out.append(Variant(ref=ref, annotations=parse_pairs(pairs, f"--variant {ref}")))
    return out


def load_file(path: str) -> Tuple[List[Variant], Optional[str], Dict[str, str], List[str]]:
    """(variants, index destination, index annotations, schema problems) of a variants file."""
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as exc:
        raise BadInput(f"{path}: {exc.strerror}") from None
    data = parse_text(text, path)
    from compat.schema import full_errors
    problems = full_errors(data, "variants")
    if problems:
        return [], None, {}, problems
    variants = []
    for i, v in enumerate(data["variants"]):
        ann = {full_key(k): str(val).lower() if isinstance(val, bool) else str(val)
               for k, val in (v.get("annotations") or {}).items()}
        variants.append(Variant(ref=v["ref"], annotations=ann, platform=v.get("platform")))
    return variants, data.get("index"), dict(data.get("annotations") or {}), []


def parse_text(text: str, path: str):
    """JSON, else YAML (PyYAML's safe loader)."""
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise BadInput(f"{path}: not valid JSON ({exc})") from None
    try:
        import yaml
    except ImportError:
        raise BadInput(f"{path}: YAML needs PyYAML (pip install pyyaml), or write the file as JSON") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise BadInput(f"{path}: not valid YAML{at} ({getattr(exc, 'problem', exc)})") from None
