"""Errors a user sees as one line, each with its documented exit code (spec/cli.md)."""


class CompatError(Exception):
    """Base class: ``str(err)`` is the one-line reason, ``exit_code`` the process status."""

    exit_code = 2


class BadInput(CompatError):
    """Unreadable reference, malformed index or profile, bad option value, network failure."""

    exit_code = 2


class RegistryError(BadInput):
    """The registry refused or failed (401/403/404/429/5xx, timeout, wrong digest)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class ProblemsFound(CompatError):
    """Problems were found and listed one per line above this one: ``validate``'s findings,
    or annotations ``annotate`` refused to push (spec/cli.md, exit code 1)."""

    exit_code = 1


class NoCompatibleCandidate(CompatError):
    """Selection found candidates but none is compatible with the host."""

    exit_code = 3


class ValueProblem(ValueError):
    """A malformed annotation or assumption value; the message names what is wrong."""


class RuleError(ValueError):
    """A malformed NFD rule or expression (compat/nfd/): here, not beside the rule language, so
    that the ranking can catch it without importing that language (start-up)."""


_CONTROL = {c: f"\\x{c:02x}" for c in list(range(0x20)) + [0x7f] + list(range(0x80, 0xa0))}
_CONTROL.update({c: f"\\u{c:04x}" for c in (0x2028, 0x2029, *range(0x202a, 0x202f), *range(0x2066, 0x206a))})
_CONTROL.update({ord("\n"): "\\n", ord("\r"): "\\r", ord("\t"): "\\t"})


def printable(value, limit: int = 200) -> str:
    """``value`` (anything, often from an image or a registry) as one line that is safe to
    print: control characters escaped (no terminal escape sequences, no forged lines), cut to
    ``limit`` characters with an ellipsis."""
    text = value if isinstance(value, str) else repr(value)
    text = text.translate(_CONTROL)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"
