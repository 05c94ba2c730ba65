"""``compat`` entry point: parse arguments, run one command, map errors to exit codes.

Exit codes (spec/cli.md): 0 success; 1 problems found and listed (``validate``, or ``annotate``
refusing to push); 2 bad input (unreadable
reference, malformed index or profile, registry or network failure, bad option); 3 no
compatible candidate. Every exit 2 is one line on stderr, a bad option included.
"""
from __future__ import annotations

import importlib
import os
import sys

from compat.cli.fast import parse as fast_parse
from compat.cli.options import timeout_value  # noqa: F401 - part of this module's interface
from compat.cli.spec import COMMANDS, ENVIRONMENT  # noqa: F401 - part of this module's interface
from compat.errors import CompatError, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional

#: the argparse side, importable from here as before (loaded when first asked for)
_PARSER_NAMES = ("build_parser", "settle", "Parser")


def __getattr__(name):
    if name in _PARSER_NAMES:
        # start-up: argparse loads only when the parser itself is asked for
        from compat.cli import parser
        return getattr(parser, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _QuietStream:
    """stderr under -q: progress bars draw only on a terminal, so this one says it is none."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _one_error(exc: CompatError) -> str:
    """The error as printed: control characters escaped (messages quote images and registries);
    exit 2 is one line, exit 3 keeps its one line per candidate."""
    text = str(exc)
    if exc.exit_code == 2:
        return printable(text, 2000)
    return "\n".join(printable(line, 2000) for line in text.split("\n"))


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = fast_parse(argv)
    if args is None:
        # start-up: argparse (~4 ms) loads only for what the fast path does not take (--help, slips, ...)
        from compat.cli.parser import parse
        try:
            args = parse(argv)
        except SystemExit as exc:        # argparse: --help, --version (0) or a usage error (2)
            return int(exc.code or 0)
    stderr = sys.stderr
    if args.quiet:
        sys.stderr = _QuietStream(stderr)
    try:
        return _run(args)
    finally:
        sys.stderr = stderr


def _run(args) -> int:
    try:
        module = importlib.import_module(args.run)
        return int(module.run(args) or 0)
    except CompatError as exc:
        print(f"compat: {_one_error(exc)}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("compat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        if os.environ.get("COMPAT_DEBUG"):
            raise
        print(f"compat: internal error: {type(exc).__name__}: {printable(str(exc), 300)} "
              f"(COMPAT_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 2
