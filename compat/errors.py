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


class NoCompatibleCandidate(CompatError):
    """Selection found candidates but none is compatible with the host."""

    exit_code = 3


class ValueProblem(ValueError):
    """A malformed annotation or assumption value; the message names what is wrong."""
