"""Go's ``regexp.MatchString`` for NFD's ``InRegexp``, through RE2 (``google-re2``).

Go's regexp *is* RE2 syntax and semantics, so the same pattern means the same thing and runs
in time linear in the input (``^(.+)+!$`` cannot backtrack). Where the Python binding of the
C++ library differs from Go, this module makes it behave as Go does:

* ``MatchString`` is an unanchored search (``search``, never ``match``);
* ``\\C`` (any byte) is C++-only: Go refuses it as an invalid escape, so does compat;
* the C++ library logs parse errors to stderr: switched off (``log_errors``), the error is
  raised instead;
* Go decodes the spec's JSON/YAML into valid UTF-8, replacing a lone surrogate with U+FFFD;
  a Python string may carry one, which is replaced the same way before RE2 sees it.

Everything else is the shared syntax: ``(?i)`` anywhere (``^(?i)avx``), ``\\pL``,
``[[:upper:]]``, ``\\z`` (``\\Z`` and look-arounds are errors in both), ``$`` only at the very
end without ``(?m)``, repetition counts up to 1000.
"""
from __future__ import annotations

import functools
import re

from compat.errors import printable

_SURROGATE = re.compile("[\ud800-\udfff]")


class RegexpError(ValueError):
    """A pattern Go's ``regexp.Compile`` refuses."""


def _go_text(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text)


def _refuse_c_only(pattern: str) -> None:
    """Escapes the C++ library accepts and Go does not (outside ``\\Q...\\E`` literals)."""
    i, n = 0, len(pattern)
    while i < n:
        if pattern[i] != "\\":
            i += 1
            continue
        nxt = pattern[i + 1:i + 2]
        if nxt == "Q":
            end = pattern.find("\\E", i + 2)
            if end < 0:
                return
            i = end + 2
            continue
        if nxt == "C":
            raise RegexpError("invalid escape sequence: \\C")
        i += 2


@functools.lru_cache(maxsize=256)
def compile(pattern: str):
    """The compiled pattern, or RegexpError with RE2's reason."""
    try:
        # start-up: google-re2 loads only for InRegexp
        import re2
    except ImportError:
        raise RegexpError("InRegexp needs the RE2 binding google-re2 (pip install google-re2)") from None
    pattern = _go_text(pattern)
    _refuse_c_only(pattern)
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(pattern, options)
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        if isinstance(reason, bytes):
            reason = reason.decode("utf-8", "replace")
        raise RegexpError(printable(str(reason), 200)) from None


def match_string(pattern: str, text: str) -> bool:
    """Go's ``regexp.MustCompile(pattern).MatchString(text)``: a match anywhere in ``text``."""
    return compile(pattern).search(_go_text(text)) is not None
