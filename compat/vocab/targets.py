"""archspec's microarchitectures as matching reads them, without importing archspec.

Matching asks archspec five things of a target: whether it exists, its vendor, its family,
its ancestors (``target <= host`` is ``target == host or target in host.ancestors``) and its
features, and, of a host's flags, whether a feature (or a feature alias such as ``sse4.1`` or
``avx512``) is among them. :func:`targets` answers from a table built from archspec once and
kept in the cache directory (``archspec-targets-<crc32>.json``), keyed by archspec's identity: its
version and the path, size and mtime of every ``microarchitectures.json`` it reads (its own,
or ``ARCHSPEC_CPU_DIR``'s, and ``ARCHSPEC_EXTENSION_CPU_DIR``'s). A new archspec, an edited
data file or a cache file that does not validate is a miss: archspec is imported, the table
built again and rewritten. ``COMPAT_NO_CACHE=1`` builds it in memory every process.
"""
from __future__ import annotations

import json
import os
import re
import sys

from compat import io, limits
from compat.errors import BadInput
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import FrozenSet, List, Mapping, Optional, Tuple

FILE = "archspec-targets-{}.json"     # one per archspec identity: two environments do not take turns
FORMAT = 1                          # what a table holds; a change makes every cached table a miss

_VERSION = re.compile(rb"""^__version__\s*=\s*["']([^"']{1,64})["']""", re.M)


class Target(Record):
    """One archspec microarchitecture, as matching reads it."""
    name: str
    vendor: str
    family: str                     # the root of its DAG (``x86_64``, ``aarch64``, ``ppc64le`` ...)
    ancestors: Tuple[str, ...]      # archspec's order: parents first
    features: FrozenSet[str]

    @property
    def depth(self) -> int:
        """1 + the number of ancestors (more = more specific)."""
        return len(self.ancestors) + 1


class Targets(Record):
    """The whole table: targets by name, and archspec's feature aliases (``any_of``,
    ``families``) with the predicates it registers."""
    by_name: Mapping[str, Target]
    aliases: Mapping[str, Mapping[str, Tuple[str, ...]]]
    identity: str

    def get(self, name: Optional[str]) -> Optional[Target]:
        return self.by_name.get(name) if name else None

    def runs_on(self, target: Target, host: Target) -> bool:
        """archspec's ``target <= host``: equal, or one of the host's ancestors."""
        return target.name == host.name or target.name in host.ancestors

    def has_feature(self, features, family: str, feature: str) -> bool:
        """archspec's ``feature in uarch`` for a microarchitecture with these ``features`` in
        this ``family`` (a partial one, built from a host's flags, is its own family ``""``):
        the feature itself, or an alias whose every predicate holds."""
        if feature in features:
            return True
        rules = self.aliases.get(feature)
        if rules is None:
            return False
        return all(self._holds(predicate, args, features, family) for predicate, args in rules.items())

    def _holds(self, predicate: str, args, features, family: str) -> bool:
        if predicate == "families":
            return family in args
        if predicate == "any_of":
            return any(self.has_feature(features, family, f) for f in args)
        return False                # a predicate a newer archspec registers: not claimed without it


def identity() -> str:
    """archspec's version and the identity of the data files it reads, found without
    importing it (``importlib`` locates the package; its ``__init__.py`` states the version)."""
    package = _package_dir()
    if package is None:
        return "archspec missing"
    version = _VERSION.search(_head(os.path.join(package, "__init__.py")))
    main_dir = os.environ.get("ARCHSPEC_CPU_DIR") or os.path.join(package, "json", "cpu")
    files = [os.path.abspath(os.path.join(main_dir, "microarchitectures.json"))]
    if os.environ.get("ARCHSPEC_EXTENSION_CPU_DIR"):
        files.append(os.path.join(os.environ["ARCHSPEC_EXTENSION_CPU_DIR"], "microarchitectures.json"))
    return "|".join([f"archspec {version.group(1).decode() if version else '?'}", f"format {FORMAT}"]
                    + [_file_identity(f) for f in files])


def _package_dir() -> Optional[str]:
    loaded = sys.modules.get("archspec")
    if loaded is not None and getattr(loaded, "__file__", None):
        return os.path.dirname(loaded.__file__)
    # start-up: importlib.util only to locate archspec, never to run it
    import importlib.util

    spec = importlib.util.find_spec("archspec")
    if spec is None or not spec.submodule_search_locations:
        return None
    return list(spec.submodule_search_locations)[0]


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(4096)
    except OSError:
        return b""


def _file_identity(path: str) -> str:
    try:
        st = os.stat(path)
    except OSError:
        return f"{path}:-"
    return f"{path}:{st.st_size}:{st.st_mtime_ns}"


_LOADED: List[Targets] = []


def targets() -> Targets:
    """The table for the archspec installed when this process first asked (archspec's
    identity is read once per process; :func:`forget` reads it again)."""
    if not _LOADED:
        _LOADED.append(_cached(identity()))
    return _LOADED[0]


def forget() -> None:
    """Drop the table this process loaded (the next :func:`targets` checks archspec again)."""
    _LOADED.clear()


def _cached(ident: str) -> Targets:
    enabled = os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")
    path = cache_file(ident)
    if enabled:
        table = read(path, ident)
        if table is not None:
            return table
    doc = build(ident)
    if enabled:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            io.write_atomically(path, json.dumps(doc, sort_keys=True).encode())
        except OSError:
            pass                    # a read-only cache directory: build again next time
    return from_doc(doc)


def cache_file(ident: str) -> str:
    """Where the table for ``ident`` is kept (a checksum of the identity names it)."""
    # start-up: zlib (a shared library) only when the table is looked for
    import zlib

    return os.path.join(io.cache_dir(), FILE.format(f"{zlib.crc32(ident.encode()):08x}"))


def read(path: str, ident: str) -> Optional[Targets]:
    """The cached table when it is one for ``ident`` and well formed; None otherwise (a miss)."""
    try:
        # json.loads, not io.load_json: its node walk would cost more than the table saves; the
        # file is bounded (ARCHSPEC_TABLE_BYTES), and a damaged one raises or fails problems()
        doc = json.loads(io.read_file(path, limits.ARCHSPEC_TABLE_BYTES, "archspec table"))
    except (BadInput, ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or doc.get("identity") != ident or problems(doc):
        return None
    return from_doc(doc)


def build(ident: str) -> dict:
    """The table from archspec itself (imported here, and only here)."""
    # start-up: archspec (~10 ms and its subprocess/ctypes/pathlib imports) only on a miss
    from archspec.cpu import TARGETS
    from archspec.cpu.schema import TARGETS_JSON

    table = {name: {"vendor": t.vendor, "family": t.family.name, "ancestors": [a.name for a in t.ancestors],
                    "features": sorted(t.features)} for name, t in TARGETS.items()}
    aliases = {alias: {p: list(args) for p, args in rules.items() if p != "reason"}
               for alias, rules in TARGETS_JSON["feature_aliases"].items()}
    return {"format": FORMAT, "identity": ident, "targets": table, "aliases": aliases}


def problems(doc: dict) -> List[str]:
    """Why a document is not a table (any problem makes the cache file a miss)."""
    if doc.get("format") != FORMAT or not isinstance(doc.get("identity"), str):
        return ["format or identity"]
    table, aliases = doc.get("targets"), doc.get("aliases")
    if not isinstance(table, dict) or not table or not isinstance(aliases, dict):
        return ["targets and aliases must be objects"]
    out = []
    for name, t in table.items():
        if not isinstance(t, dict) or not isinstance(t.get("vendor"), str) or t.get("family") not in table \
                or not _names(t.get("ancestors")) or not _names(t.get("features")) \
                or not all(a in table for a in t["ancestors"]):
            out.append(f"target {name[:40]!r}")
    for alias, rules in aliases.items():
        if not isinstance(rules, dict) or not all(_names(a) for a in rules.values()):
            out.append(f"alias {alias[:40]!r}")
    return out


def _names(value) -> bool:
    return isinstance(value, list) and all(isinstance(x, str) for x in value)


def from_doc(doc: dict) -> Targets:
    by_name = {name: Target(name, t["vendor"], t["family"], tuple(t["ancestors"]), frozenset(t["features"]))
               for name, t in doc["targets"].items()}
    aliases = {alias: {p: tuple(a) for p, a in rules.items()} for alias, rules in doc["aliases"].items()}
    return Targets(by_name, aliases, doc["identity"])
