"""A small on-disk cache for probe answers that cost a child process.

An entry is keyed by what decides the answer: the probe's name plus the identity
(path, size, mtime) of the files it depends on (the executable, ``/etc/ld.so.cache``).
Replace the binary and the key changes, so a stale answer is never served.
``COMPAT_CACHE_DIR`` moves it; ``COMPAT_NO_CACHE=1`` turns it off.
"""
from __future__ import annotations

import json
import os
from typing import Any, Callable, Iterable, Optional


def cache_dir() -> str:
    base = os.environ.get("COMPAT_CACHE_DIR")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "compat")


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


def write_atomically(path: str, data: bytes) -> None:
    """Write a sibling temporary file, then rename it over ``path`` (readers never see half)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


class ProbeCache:
    FILE = "probes.json"

    def __init__(self, enabled: Optional[bool] = None):
        if enabled is None:
            enabled = os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")
        self.enabled = enabled
        self._path = os.path.join(cache_dir(), self.FILE)
        self._data: Optional[dict] = None
        self._dirty = False

    def _load(self) -> dict:
        if self._data is None:
            try:
                with open(self._path, encoding="utf-8") as fh:
                    self._data = json.load(fh)
                if not isinstance(self._data, dict):
                    self._data = {}
            except (OSError, ValueError):
                self._data = {}
        return self._data

    def get(self, name: str, depends_on: Iterable[str], compute: Callable[[], Any]) -> Any:
        if not self.enabled:
            return compute()
        key = f"{name}|{_identity(depends_on)}"
        data = self._load()
        if key in data:
            return data[key]
        value = compute()
        data[key] = value
        self._dirty = True
        return value

    def save(self) -> None:
        if not (self.enabled and self._dirty):
            return
        try:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            write_atomically(self._path, json.dumps(self._data).encode())
        except OSError:
            pass  # a cache that cannot be written is only slower
        self._dirty = False
