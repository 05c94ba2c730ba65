"""The verdict one matcher gives one candidate: a :class:`State` (ok, fail, unknown), the
sentence a person reads, this dimension's part of the ranking key and, where a matcher has
more to say than a sentence, a structured ``detail`` (the NFD matcher: each compatibility
set's rule results, which ``compat check`` renders)."""
from __future__ import annotations

import enum

from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Optional, Tuple


class State(enum.Enum):
    OK = "ok"
    FAIL = "fail"
    UNKNOWN = "unknown"        # a host fact the matcher needs is not known (--assume states it)


class Check(Record):
    dimension: str          # platform, cpu, gpu, mpi, fabric, kernel
    ok: bool
    reason: str             # a sentence a person reads ("needs zen4; host is zen3 ...")
    fit: Tuple = ()         # this dimension's part of the ranking key (higher is better)
    note: str = ""          # a warning that does not exclude (bind-mode glibc, minor-version CUDA)
    state: Optional[State] = None   # None: OK or FAIL, as ``ok`` says
    detail: Any = None      # structured results behind the sentence (NFD: the SetResults)

    @property
    def verdict(self) -> State:
        return self.state or (State.OK if self.ok else State.FAIL)

    @property
    def unknown(self) -> bool:
        return self.verdict is State.UNKNOWN


def ok(dimension: str, reason: str, fit: Tuple = (), note: str = "", detail: Any = None) -> Check:
    return Check(dimension, True, reason, fit, note, State.OK, detail)


def fail(dimension: str, reason: str, detail: Any = None) -> Check:
    return Check(dimension, False, reason, (), "", State.FAIL, detail)


def unknown(dimension: str, fact: str, hint: str = "") -> Check:
    """The host fact ``fact`` is unknown (the sentence says how to state it)."""
    return undecided(dimension, f"unknown: {fact}" + (f" ({hint})" if hint else f" (state it with --assume {fact}=...)"))


def undecided(dimension: str, reason: str) -> Check:
    """Unknown, with the whole sentence given."""
    return Check(dimension, False, reason, (), "", State.UNKNOWN)
