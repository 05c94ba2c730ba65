"""Variants: one image and its annotations, from the command line or a variants file.

A variants file is read bounded (``compat.io``) and version-like values as written: an
unquoted ``gpu.cuda.version: 12.10`` stays ``"12.10"`` (YAML would read the float 12.1).
Annotation values may be a string, an integer (``weight: 5``), or, for the comma-list keys,
a list of those (``gpu.cuda.arch: [sm_80, sm_90]``, joined with commas).  Anything else
(a boolean such as an unquoted ``yes``, a null, a mapping, a date, a JSON fraction that has
already lost its trailing zeros) is refused with the key named.
"""
from __future__ import annotations

import datetime
import re

from compat import limits
from compat.author.lint import position
from compat.errors import BadInput
from compat.io import load_structured, read_file
from compat.record import Record
from compat.schema import full_errors
from compat.vocab.annotations import PREFIX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

#: keys whose value is a comma list: a YAML/JSON list is accepted for them
LIST_KEYS = frozenset(PREFIX + k for k in ("cpu.features", "gpu.cuda.arch", "gpu.amd.arch", "mpi.pmi",
                                           "fabric", "fabric.providers", "runtime", "runtime.needs"))


class Variant(Record):
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


# -- variants files ---------------------------------------------------------------------------

def read(path: str):
    """The document in ``path`` (JSON or YAML), bounded, version-like values as written."""
    data = read_file(path, limits.VARIANTS_FILE_BYTES, path)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{path}: not UTF-8 text") from None
    return load_structured(text, path, floats_as_text=True)


def _scalar(key: str, value: Any) -> Tuple[Optional[str], Optional[str]]:
    """(text, None) or (None, why it is refused) for one scalar annotation value."""
    if isinstance(value, str):
        return value.strip(), None
    if isinstance(value, bool):
        return None, (f"{key}: read as the boolean {str(value).lower()} (unquoted yes/no/on/off/true/false "
                      "are booleans in YAML); write the value in quotes")
    if isinstance(value, int):
        return str(value), None
    if isinstance(value, float):
        return None, (f"{key}: the number {value!r} no longer says how it was written (JSON reads 12.10 "
                      "as 12.1); write the value as a string")
    if value is None:
        return None, f"{key}: no value (an empty YAML value is null); give one or remove the key"
    if isinstance(value, (datetime.date, datetime.datetime)):
        return None, f"{key}: read as a date; write the value in quotes"
    kind = {dict: "a mapping", list: "a list"}.get(type(value), type(value).__name__)
    return None, f"{key}: expected a string or an integer, got {kind}"


def _value(key: str, value: Any, lists: bool) -> Tuple[Optional[str], Optional[str]]:
    if not isinstance(value, list):
        return _scalar(key, value)
    if not lists or key not in LIST_KEYS:
        allowed = ", ".join(sorted(LIST_KEYS))
        return None, f"{key}: a list is accepted only for the comma-list keys ({allowed})"
    if not value:
        return None, f"{key}: empty list"
    items = []
    for item in value:
        if isinstance(item, list) or isinstance(item, dict):
            return None, f"{key}: list items must be strings"
        text, why = _scalar(key, item)
        if why:
            return None, why
        items.append(text)
    return ",".join(items), None


def _annotations(raw: Mapping, compat_keys: bool) -> Tuple[Dict[str, str], List[str]]:
    """(annotations as strings, problems): ``compat_keys`` -> keys get the prefix, and lists
    are accepted for the comma-list keys."""
    out: Dict[str, str] = {}
    problems: List[str] = []
    for k, v in raw.items():
        if not isinstance(k, str) or not k.strip():
            problems.append(f"annotation key {k!r}: not a non-empty string")
            continue
        key = full_key(k) if compat_keys else k
        if key in out:
            problems.append(f"{key}: given twice (with and without the {PREFIX} prefix)")
            continue
        text, why = _value(key, v, compat_keys)
        if why:
            problems.append(why)
        else:
            out[key] = text
    return out, problems


def _where(i: int, v: Any) -> str:
    ref = v.get("ref") if isinstance(v, dict) else None
    return position(i, ref if isinstance(ref, str) else "")


_VARIANT_PATH = re.compile(r"\$\.variants\[(\d+)\](.*?): (.*)", re.S)


def _schema_problem(err: str, variants: Sequence) -> Tuple[str, str]:
    """A JSON Schema error as (location, message), the variant named by its #N position."""
    m = _VARIANT_PATH.fullmatch(err)
    if m and int(m.group(1)) < len(variants):
        i = int(m.group(1))
        return _where(i, variants[i]), f"schema: ${m.group(2)}: {m.group(3)}"
    return "file", f"schema: {err}"


def check(data: Any) -> Tuple[List[Variant], Optional[str], Dict[str, str], List[Tuple[str, str]]]:
    """(variants, index destination, index annotations, problems as (location, message)) of
    a parsed variants file; no variants when there is any problem."""
    problems: List[Tuple[str, str]] = []
    if isinstance(data, dict):
        data = dict(data)
        if isinstance(data.get("annotations"), dict):
            data["annotations"], probs = _annotations(data["annotations"], compat_keys=False)
            problems += [("index annotations", p) for p in probs]
        if isinstance(data.get("variants"), list):
            cleaned = []
            for i, v in enumerate(data["variants"]):
                if isinstance(v, dict) and isinstance(v.get("annotations"), dict):
                    ann, probs = _annotations(v["annotations"], compat_keys=True)
                    problems += [(_where(i, v), p) for p in probs]
                    v = dict(v, annotations=ann)
                cleaned.append(v)
            data["variants"] = cleaned
    variants_raw = data.get("variants") if isinstance(data, dict) else None
    variants_raw = variants_raw if isinstance(variants_raw, list) else []
    problems += [_schema_problem(e, variants_raw) for e in full_errors(data, "variants")]
    if problems:
        return [], None, {}, problems
    variants = [Variant(ref=v["ref"], annotations=dict(v.get("annotations") or {}), platform=v.get("platform"))
                for v in data["variants"]]
    return variants, data.get("index"), dict(data.get("annotations") or {}), []


def load_file(path: str) -> Tuple[List[Variant], Optional[str], Dict[str, str], List[Tuple[str, str]]]:
    """(variants, index destination, index annotations, problems) of a variants file."""
    return check(read(path))


def parse_text(text: str, path: str):
    """JSON, else YAML, bounded (kept for ``compat/nfd`` until it calls ``compat.io`` itself)."""
    return load_structured(text, path)
