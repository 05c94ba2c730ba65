"""The argparse parser of every command (options in ``cli/spec.py``): ``--help``, usage
errors as one line (exit 2), ``--version``, completion; and :func:`settle`, the environment
defaults and the options that do not combine. The hot commands' plain argument lists skip
this module (``cli/fast.py``)."""
from __future__ import annotations

import argparse
import os
import sys

from compat.cli.options import conflicts, plain_http, timeout_from_env
from compat.cli.spec import COMMANDS, EPILOG, SUPPRESS, add_commands, quiet_option
from compat.errors import printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional


def _columns() -> int:
    """``shutil.get_terminal_size().columns``, which argparse asks for whenever it makes a
    formatter (each add_argument does), without importing shutil and its bz2, lzma and fnmatch
    (~3 ms of every run, for help text that is seldom printed)."""
    try:
        columns = int(os.environ["COLUMNS"])
    except (KeyError, ValueError):
        columns = 0
    if columns <= 0:
        try:
            columns = os.get_terminal_size(sys.__stdout__.fileno()).columns
        except (AttributeError, ValueError, OSError):
            columns = 0
    return columns or 80


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions wrapped to the terminal; the environment table in the epilog kept as laid out."""

    def __init__(self, prog, indent_increment=2, max_help_position=24, width=None, **kwargs):
        super().__init__(prog, indent_increment, max_help_position,
                         _columns() - 2 if width is None else width, **kwargs)

    def _fill_text(self, text, width, indent):
        if text is EPILOG:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the exit-2 contract), naming --help;
    the commands' parsers (add_subparsers makes them of this class too) format with _Formatter."""

    def __init__(self, *args, formatter_class=_Formatter, **kwargs):
        super().__init__(*args, formatter_class=formatter_class, **kwargs)

    def add_argument(self, *args, **kwargs):
        if kwargs.get("default") == SUPPRESS:      # cli/spec.py spells it without importing argparse
            kwargs["default"] = argparse.SUPPRESS   # which compares it by identity
        return super().add_argument(*args, **kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: {printable(message, 300)} (see {self.prog} --help)\n")


class _Version(argparse.Action):
    """--version from the installed distribution's metadata, read only when asked."""

    def __init__(self, option_strings, dest=argparse.SUPPRESS, default=argparse.SUPPRESS, help=None):
        super().__init__(option_strings, dest=dest, default=default, nargs=0, help=help)

    def __call__(self, parser, namespace, values, option_string=None):
        # start-up: importlib.metadata (~15 ms) loads only for --version
        from importlib import metadata
        try:
            version = metadata.version("hpc-compat")
        except metadata.PackageNotFoundError:
            version = "unknown (not installed: pip install .)"
        sys.stdout.write(f"compat {version}\n")
        parser.exit(0)


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's subparser (argparse construction is a
    measurable part of a per-job call)."""
    p = Parser(prog="compat", description="HPC container compatibility resolver: detect the host, rank an "
               "extended image index, pin the best digest.", epilog=EPILOG)
    p.add_argument("--version", action=_Version, help="print the installed version and exit")
    quiet_option(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_commands(sub, only)
    return p


def settle(args, parser: argparse.ArgumentParser) -> None:
    """Defaults from the environment, and options that cannot go together (one line, exit 2)."""
    command = f"{parser.prog} {args.command}"
    problem = conflicts(args)
    if problem:
        parser.exit(2, f"{command}: {problem} (see {command} --help)\n")
    if hasattr(args, "default_timeout"):
        if args.timeout is None:
            try:
                args.timeout = timeout_from_env(args.default_timeout)
            except argparse.ArgumentTypeError as exc:
                parser.exit(2, f"{command}: environment variable COMPAT_TIMEOUT: {exc}\n")
        args.plain_http = plain_http(args)


def parse(argv: List[str]):
    """The arguments, settled; SystemExit for --help, --version (0) or a usage error (2)."""
    words = [a for a in argv if not a.startswith("-")]
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    settle(args, parser)
    return args
