"""The hot commands' plain argument lists parsed without argparse (~4 ms of every per-job
``select``/``detect``): the options come from the same ``cli/spec.py`` functions as the
argparse parser's, recorded here; anything this parser is not sure to read exactly as
argparse would (``--help``, an abbreviation, ``--``, a value that starts with ``-``, a bad
value, a missing argument, options that do not combine, ...) returns None and argparse
takes the whole list, with its messages. tests/test_cli_fast.py checks, on generated
argument lists, that every list taken here gives argparse's namespace."""
from __future__ import annotations

import types

from compat.cli.options import conflicts, plain_http, timeout_from_env
from compat.cli.spec import SUPPRESS, add_commands

#: the commands a job runs; the others go through argparse
HOT = ("select", "detect")
QUIET = ("-q", "--quiet")


class _Option:
    """One add_argument call: what parsing needs of it."""

    def __init__(self, flags, action="store", dest=None, default=None, const=None, choices=None, type=None,
                 nargs=None, required=False, group=None, **_help):
        self.flags, self.action, self.const, self.choices, self.type = flags, action, const, choices, type
        self.positional = not flags[0].startswith("-")
        longs = [f for f in flags if f.startswith("--")]
        self.dest = dest or (flags[0] if self.positional else (longs or flags)[0].lstrip("-").replace("-", "_"))
        self.default = False if action == "store_true" and default is None else default
        self.required = required or self.positional
        self.group = group
        #: what this parser reads exactly as argparse does; another option sends the list to argparse
        self.simple = nargs is None and action in ("store", "store_true", "store_const", "append")

    def takes_value(self) -> bool:
        return self.action in ("store", "append")


class _Recorder:
    """Stands in for argparse's parser, groups and subparsers action while cli/spec.py adds a
    command's options, and keeps them."""

    def __init__(self, group=None, into=None):
        self.options = [] if into is None else into.options
        self.defaults = {} if into is None else into.defaults
        self.group = group

    def add_parser(self, name, **_help):
        self.defaults["command"] = name
        return self

    def add_argument(self, *flags, **kwargs):
        self.options.append(_Option(flags, group=self.group, **kwargs))

    def add_argument_group(self, *_title, **_help):
        return _Recorder(self.group, into=self)

    def add_mutually_exclusive_group(self, **_kwargs):
        return _Recorder(object(), into=self)

    def set_defaults(self, **kwargs):
        self.defaults.update(kwargs)


_COMMANDS = {}


def _command(name) -> _Recorder:
    if name not in _COMMANDS:
        recorder = _Recorder()
        add_commands(recorder, name)
        _COMMANDS[name] = recorder
    return _COMMANDS[name]


def parse(argv):
    """The settled arguments of ``compat [-q] select|detect ...`` as argparse gives them, or
    None: argparse decides."""
    argv = list(argv)
    quiet = False
    while argv and argv[0] in QUIET:
        quiet, argv = True, argv[1:]
    if not argv or argv[0] not in HOT:
        return None
    command = _command(argv[0])
    values = _read(command, argv[1:])
    if values is None:
        return None
    args = types.SimpleNamespace(quiet=quiet, **command.defaults)
    for option in command.options:
        if option.dest in values:
            setattr(args, option.dest, values[option.dest])
        elif option.required:
            return None
        elif option.default != SUPPRESS and option.dest not in vars(args):
            setattr(args, option.dest, list(option.default) if isinstance(option.default, list) else option.default)
    return args if _settle(args) else None


def _read(command, words):
    """{dest: value} for the words after the command; None where argparse must decide."""
    by_flag = {flag: option for option in command.options for flag in option.flags if not option.positional}
    positionals = [option for option in command.options if option.positional]
    values, groups = {}, {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if not word.startswith("-"):
            if not positionals:
                return None
            values[positionals.pop(0).dest] = word
            continue
        flag, eq, inline = word.partition("=")
        option = by_flag.get(flag)
        if option is None or not option.simple or (eq and not (flag.startswith("--") and inline)):
            return None
        if option.group is not None and groups.setdefault(option.group, option) is not option:
            return None                                          # argparse: not allowed with
        if not option.takes_value():
            if eq:
                return None
            values[option.dest] = True if option.action == "store_true" else option.const
            continue
        if not eq:
            if i == len(words) or words[i].startswith("-"):
                return None
            inline, i = words[i], i + 1
        value = _value(option, inline)
        if value is None:
            return None
        if option.action == "append":
            values.setdefault(option.dest, []).append(value)
        else:
            values[option.dest] = value
    return values


def _value(option, text):
    """The option's value as argparse converts and checks it; None when it would refuse it."""
    if option.type is not None:
        try:
            text = option.type(text)
        except Exception:  # noqa: BLE001 - argparse reports it, with its own message
            return None
    if option.choices is not None and text not in option.choices:
        return None
    return text


def _settle(args) -> bool:
    """cli/parser.py's settle() where it has nothing to say; False where it has (argparse's
    side then prints it)."""
    if conflicts(args):
        return False
    if hasattr(args, "default_timeout"):
        if args.timeout is None:
            try:
                args.timeout = timeout_from_env(args.default_timeout)
            except Exception:  # noqa: BLE001 - argparse's side reports it
                return False
        args.plain_http = plain_http(args)
    return True
