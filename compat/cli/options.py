"""Option values beyond what argparse checks: defaults from the environment, and the pairs of
options that cannot go together (spec/cli.md, "Options that do not combine")."""
from __future__ import annotations

import math
import os

from compat.errors import BadInput, printable
from compat.limits import MAX_TIMEOUT_S

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Optional

_TRUE = ("1", "true", "yes", "all", "*")
_FALSE = ("", "0", "false", "no")


def conflicts(args) -> Optional[str]:
    """The first pair of options that contradict each other, as a sentence; None if none."""
    fmt = getattr(args, "format", None)
    if getattr(args, "json", False) and fmt not in (None, "json") and args.command in ("select", "detect"):
        return f"--json and --format {fmt} contradict each other (--json is --format json): give one"
    if getattr(args, "host", None):
        if getattr(args, "sysroot", None):
            return "--host FILE and --sysroot DIR both say where the host facts come from: give one"
        if getattr(args, "probe_tools", False):
            return "--probe-tools runs tools on this machine, --host FILE describes a saved one: give one"
    runtime = getattr(args, "runtime", None)
    if runtime and fmt:
        problem = runtime_format_conflict(runtime, fmt)
        if problem:
            return problem
    if args.command == "annotate":
        if args.json and args.explain:
            return "--json and --explain are two outputs of --infer: give one"
        if (args.json or args.explain or args.path) and not args.infer:
            return "--json, --explain and --path go with --infer"
    return None


def runtime_value(text: str) -> str:
    """A --runtime value: a runtime of compat/data/runtimes.json, by its name or an alias."""
    # start-up: the value grammar loads only for --runtime
    from compat.errors import ValueProblem
    from compat.vocab.values import runtime_name
    try:
        return runtime_name(text, "--runtime")
    except ValueProblem as exc:
        raise _usage_error(str(exc).split(": ", 1)[-1]) from None


def runtime_format_conflict(runtime: str, fmt: str) -> Optional[str]:
    """--runtime R with a --format naming another runtime's form that R does not pull."""
    # start-up: the runtime table loads only for --runtime with --format
    from compat.vocab.data import runtimes
    table = runtimes()
    if any(fmt in info["formats"] for info in table.values()) and fmt not in table[runtime]["formats"]:
        return (f"--runtime {runtime} does not pull what --format {fmt} prints: give one of them "
                f"(--format {fmt} alone selects for {fmt})")
    return None


def timeout_value(text: str) -> float:
    """A --timeout / COMPAT_TIMEOUT value: seconds, finite, above 0, at most a day."""
    try:
        value = float(text)
    except ValueError:
        raise _usage_error(f"{printable(text, 40)} is not a number of seconds") from None
    if not math.isfinite(value) or value <= 0 or value > MAX_TIMEOUT_S:
        raise _usage_error(f"{printable(text, 40)}: give seconds above 0 and at most {MAX_TIMEOUT_S} (a day)")
    return value


def _usage_error(message: str) -> Exception:
    """argparse's ArgumentTypeError, which its parser prints as the option's usage error."""
    # start-up: argparse loads only for a bad value (the fast path of cli/fast.py runs without it)
    import argparse
    return argparse.ArgumentTypeError(message)


def timeout_from_env(default: float, env=None) -> float:
    """COMPAT_TIMEOUT when set (checked like --timeout), else the command's default."""
    text = (os.environ if env is None else env).get("COMPAT_TIMEOUT", "").strip()
    return timeout_value(text) if text else default


def plain_http(args, env=None) -> bool:
    """--plain-http, or COMPAT_PLAIN_HTTP naming every registry this command talks to (1 = all)."""
    if args.plain_http:
        return True
    value = (os.environ if env is None else env).get("COMPAT_PLAIN_HTTP", "").strip().lower()
    if value in _FALSE:
        return False
    if value in _TRUE:
        return True
    hosts = {h.strip() for h in value.split(",") if h.strip()}
    registries = set(_registries(_refs_of(args)))
    return bool(registries) and registries <= hosts


def _refs_of(args) -> Iterable[str]:
    for name in ("ref", "target", "dest", "source"):
        value = getattr(args, name, None)
        if isinstance(value, str):
            yield value
    for variant in getattr(args, "variant", None) or ():
        if variant:
            yield variant[0]


def _registries(texts: Iterable[str]) -> Iterable[str]:
    # start-up: the reference parser loads only for a COMPAT_PLAIN_HTTP list
    from compat.oci.reference import parse
    for text in texts:
        try:
            ref = parse(text)
        except BadInput:
            continue            # the command itself reports a malformed reference
        if not ref.is_layout:
            yield ref.registry.lower()
