"""A small on-disk cache for probe answers that cost a child process.

An entry is keyed by what decides the answer: the identity of the probing
code (:func:`compat.host.profile_cache.code_identity` of compat's ``host``, ``vocab`` and
``data``, as the profile cache keys it, hashed), the probe's name, and the identity (path, size, mtime) of the
files it depends on (the executable, ``/etc/ld.so.cache``). Replace the binary or upgrade
compat and the key changes, so a stale answer is never served; entries another code wrote
are dropped on the next save.
``COMPAT_CACHE_DIR`` moves it; ``COMPAT_NO_CACHE=1`` turns it off.
"""
from __future__ import annotations

import hashlib
import json
import os

from compat import io, limits
from compat.errors import BadInput
from compat.host.profile_cache import CODE, code_identity
from compat.io import cache_dir, write_atomically

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Iterable, Optional


def _identity(paths: Iterable[str]) -> Optional[str]:
    parts = []
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            parts.append(f"{p}:-")
            continue
        parts.append(f"{p}:{st.st_size}:{st.st_mtime_ns}")
    return "|".join(parts)


# -- what a valid entry looks like, per probe (anything else is a miss) ----------------------

def is_text(value) -> bool:
    """A tool's captured output (``--version`` texts, ``srun --mpi=list``)."""
    return isinstance(value, str)


def is_level(value) -> bool:
    """An x86-64 level 1..4, or None (the loader could not tell)."""
    return value is None or (type(value) is int and 1 <= value <= 4)


def is_library_answers(value) -> bool:
    """The MPI library probe: ``[{"soname": str, "text": str or None}, ...]``."""
    return isinstance(value, list) and all(
        isinstance(e, dict) and isinstance(e.get("soname"), str) and isinstance(e.get("text"), (str, type(None)))
        for e in value)


class ProbeCache:
    """``root``: the Root the probes run below; every answer asked for is reported to it
    (:meth:`~compat.host.root.Root.note_child`) whether it comes from here or from a child,
    so that a recording root keys a cached answer as it keys a run one."""
    FILE = "probes.json"

    def __init__(self, enabled: Optional[bool] = None, root=None):
        if enabled is None:
            enabled = os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")
        self.enabled = enabled
        self._root = root
        self._path = os.path.join(cache_dir(), self.FILE)
        self._data: Optional[dict] = None
        self._dirty = False
        self._fresh: set = set()
        self._code: Optional[str] = None

    def code(self) -> str:
        """A short hash of the probing code's identity (compat's entry in the profile cache's
        :data:`~compat.host.profile_cache.CODE`), computed once per cache."""
        if self._code is None:
            identity = code_identity("compat", dict(CODE)["compat"]) or "-"
            self._code = hashlib.sha256(identity.encode()).hexdigest()[:16]
        return self._code

    def _load(self) -> dict:
        """The cache file as a dict; anything else (absent, unreadable, not JSON, too large,
        not an object) is an empty cache that the next save rewrites."""
        if self._data is None:
            try:
                data = io.load_json(io.read_file(self._path, limits.PROBE_CACHE_BYTES, "probe cache"),
                                    "probe cache")
            except BadInput:
                data = None
            self._data = data if isinstance(data, dict) else {}
        return self._data

    def get(self, name: str, depends_on: Iterable[str], compute: Callable[[], Any],
            valid: Callable[[Any], bool]) -> Any:
        """The cached answer when there is one and ``valid(answer)``; else ``compute()``,
        remembered. An entry of the wrong shape is a miss (and is rewritten), never an error."""
        depends_on = list(depends_on)
        if self._root is not None:
            self._root.note_child(depends_on)
        if not self.enabled:
            return compute()
        key = f"{self.code()}|{name}|{_identity(depends_on)}"
        data = self._load()
        if key in data:
            try:
                ok = bool(valid(data[key]))
            except Exception:  # noqa: BLE001 - a predicate tripping on junk means junk
                ok = False
            if ok:
                return data[key]
        value = compute()
        data[key] = value
        self._fresh.add(key)
        self._dirty = True
        return value

    def save(self) -> None:
        if not (self.enabled and self._dirty):
            return
        try:
            os.makedirs(os.path.dirname(self._path), mode=0o700, exist_ok=True)
            code = self.code()                               # entries other code wrote are dead
            self._data = {k: v for k, v in self._data.items() if k.split("|")[0] == code}
            data = json.dumps(self._data).encode()
            if len(data) > limits.PROBE_CACHE_BYTES:         # never write what cannot be read back
                data = json.dumps({k: v for k, v in self._data.items() if k in self._fresh}).encode()
            if len(data) > limits.PROBE_CACHE_BYTES:
                data = b"{}"
            write_atomically(self._path, data)
        except OSError:
            pass  # a cache that cannot be written is only slower
        self._dirty = False
