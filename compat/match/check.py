"""The verdict one matcher gives one candidate."""
from __future__ import annotations

from typing import NamedTuple, Tuple


class Check(NamedTuple):
    dimension: str          # platform, cpu, gpu, mpi, fabric, kernel
    ok: bool
    reason: str             # a sentence a person reads ("needs zen4; host is zen3 ...")
    fit: Tuple = ()         # this dimension's part of the ranking key (higher is better)
    note: str = ""          # a warning that does not exclude (bind-mode glibc, minor-version CUDA)

    @property
    def unknown(self) -> bool:
        return (not self.ok) and self.reason.startswith("unknown:")


def ok(dimension: str, reason: str, fit: Tuple = (), note: str = "") -> Check:
    return Check(dimension, True, reason, fit, note)


def fail(dimension: str, reason: str) -> Check:
    return Check(dimension, False, reason, ())


def unknown(dimension: str, fact: str, hint: str = "") -> Check:
    return Check(dimension, False, f"unknown: {fact}" + (f" ({hint})" if hint else f" (state it with --assume {fact}=...)"), ())
