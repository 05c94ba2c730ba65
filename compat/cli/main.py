"""``compat`` entry point: parse arguments, run one command, map errors to exit codes.

Exit codes (spec/cli.md): 0 success; 1 problems found and listed (``validate``, or ``annotate``
refusing to push); 2 bad input (unreadable
reference, malformed index or profile, registry or network failure, bad option); 3 no
compatible candidate. Every exit 2 is one line on stderr, a bad option included.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import List, Optional

from compat.cli.options import conflicts, plain_http, runtime_value, timeout_from_env, timeout_value
from compat.errors import CompatError, printable

#: site-wide settings an administrator sets once (spec/cli.md, "Environment"), shown in --help
ENVIRONMENT = (
    ("COMPAT_TIMEOUT", "default for --timeout, in seconds"),
    ("COMPAT_PLAIN_HTTP", "registries reached over plain HTTP: a comma-separated list of host[:port], or 1 for all"),
    ("COMPAT_SYSROOT", "default for --sysroot"),
    ("COMPAT_CACHE_DIR", "where manifests and probe results are cached "
                         "(default $XDG_CACHE_HOME/compat, ~/.cache/compat)"),
    ("COMPAT_NO_CACHE", "1: read and write no cache"),
    ("COMPAT_DEBUG", "1: show the traceback of an internal error"),
)
EPILOG = "environment (options given on the command line win):\n" + \
    "\n".join(f"  {name:<18} {what}" for name, what in ENVIRONMENT)

COMMANDS = ("detect", "select", "check", "plan", "annotate", "validate", "completion")


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (the exit-2 contract), naming --help."""

    def error(self, message):
        self.exit(2, f"{self.prog}: {printable(message, 300)} (see {self.prog} --help)\n")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Descriptions wrapped to the terminal; the environment table in the epilog kept as laid out."""

    def _fill_text(self, text, width, indent):
        if text is EPILOG:
            return super()._fill_text(text, width, indent)
        return argparse.HelpFormatter._fill_text(self, text, width, indent)


class _QuietStream:
    """stderr under -q: progress bars draw only on a terminal, so this one says it is none."""

    def __init__(self, stream):
        self._stream = stream

    def isatty(self) -> bool:
        return False

    def __getattr__(self, name):
        return getattr(self._stream, name)


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


def _quiet(p: argparse.ArgumentParser, top: bool = False) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="no progress or warnings on stderr (errors still)")


def _network_options(p: argparse.ArgumentParser, default_timeout: float) -> None:
    p.add_argument("--plain-http", action="store_true",
                   help="talk HTTP, not HTTPS, to the registry. Env: COMPAT_PLAIN_HTTP")
    p.add_argument("--timeout", type=timeout_value, metavar="S", default=None,
                   help=f"bound on the command's total network time, in seconds (default {default_timeout:g}; "
                        f"above 0, at most a day). Env: COMPAT_TIMEOUT")
    p.set_defaults(default_timeout=default_timeout)


def _host_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("host (--host excludes --sysroot and --probe-tools)")
    g.add_argument("--sysroot", metavar="DIR",
                   help="read /proc, /sys, /etc, /usr, /opt below DIR (another machine's files; "
                        "nothing is executed). Env: COMPAT_SYSROOT")
    g.add_argument("--assume", metavar="KEY=VALUE", action="append", default=[],
                   help="state a host fact instead of detecting it (repeatable), e.g. gpu.cc=9.0")
    g.add_argument("--host", metavar="FILE", help="load a saved profile (compat detect --json), or an "
                                                 "NFD NodeFeature / `nfd export features` document, "
                                                 "instead of detecting")
    g.add_argument("--probe-tools", action="store_true",
                   help="also ask fi_info for libfabric providers and ucx_info for UCX transports "
                        "(adds 100-300 ms)")


def _nfd_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("NFD image-compatibility artifacts")
    r = g.add_mutually_exclusive_group()
    r.add_argument("--referrers", dest="referrers", action="store_const", const=True, default=None,
                   help="look for NFD artifacts of every candidate (default: only of candidates "
                        "without org.hpc-compat.* annotations)")
    r.add_argument("--no-referrers", dest="referrers", action="store_const", const=False,
                   help="never look for NFD artifacts (saves two requests per such candidate)")
    g.add_argument("--tags", action="append", metavar="TAG[,TAG]",
                   help="use only the NFD compatibility sets with one of these tags")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's subparser (argparse construction is a
    measurable part of a per-job call)."""
    p = Parser(prog="compat", description="HPC container compatibility resolver: detect the host, rank an "
               "extended image index, pin the best digest.", epilog=EPILOG,
               formatter_class=_Formatter)
    p.add_argument("--version", action=_Version, help="print the installed version and exit")
    _quiet(p, top=True)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, add in _ADDERS:
        if only in (None, name):
            add(sub)
    return p


def _command(sub, name: str, summary: str, description: str) -> argparse.ArgumentParser:
    c = sub.add_parser(name, help=summary, description=description, epilog=EPILOG,
                       formatter_class=_Formatter)
    _quiet(c)
    c.set_defaults(run=f"compat.cli.{name}")
    return c


def _add_detect(sub) -> None:
    d = _command(sub, "detect", "print the host profile",
                 "Detect this machine (or the one below --sysroot) and print what it is and where each fact "
                 "came from.")
    d.add_argument("--json", action="store_true", help="print the profile as JSON (schemas/host.schema.json)")
    d.add_argument("--format", choices=["summary", "json", "nfd-features", "slurm-features"], default=None,
                   help="summary (default), json (= --json), nfd-features: an NFD local feature file "
                        "with what NFD cannot see (for /etc/kubernetes/node-feature-discovery/features.d/), or "
                        "slurm-features: the node's facts as Slurm feature names, comma-separated (spec/plan.md)")
    _host_options(d)


def _index_command(sub, name: str, summary: str, description: str, ref_help: str) -> argparse.ArgumentParser:
    """A command that reads one index: its parser with the REF argument."""
    p = _command(sub, name, summary, description)
    p.add_argument("ref", metavar="REF", help=ref_help)
    return p


def _ranking_options(p: argparse.ArgumentParser, platform_help: str, unknown_help: str,
                     one_host: bool = True) -> None:
    """What the ranking commands share: the platform, unknown keys, the registry; and for
    select and check (one host) the NFD artifacts and the host options."""
    p.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help=platform_help)
    p.add_argument("--allow-unknown", action="store_true", help=unknown_help)
    _network_options(p, 10.0)
    if one_host:
        # start-up: the runtime table (completion's choices) loads only for the select and check parsers
        from compat.vocab.data import runtimes
        p.add_argument("--runtime", type=runtime_value, choices=tuple(runtimes()), metavar="NAME",
                       help=f"the container runtime that will run the image ({', '.join(runtimes())}; or an "
                            f"alias): judges the runtime keys and SIF variants (default: the one --format "
                            f"names, else the first found on the host)")
        _nfd_options(p)
        _host_options(p)


def _add_select(sub) -> None:
    # start-up: the parser of `compat detect` and `--version` does not load compat.oci
    from compat.oci.formats import FORMATS
    s = _index_command(sub, "select", "pick the best image of an index for this host",
                       "Rank every image of an extended index for the host and print the pinned best one "
                       "(exit 3 if none fits).", "registry reference (host/repo[:tag][@digest]) or oci:DIR[:tag]")
    s.add_argument("--explain", action="store_true",
                   help="table of every candidate, its verdict, score and reasons (on stderr when "
                        "--format or --json also asks for the reference on stdout)")
    s.add_argument("--json", action="store_true",
                   help="the selection as JSON (schemas/selection.schema.json); same as --format json")
    s.add_argument("--format", choices=FORMATS, default=None,
                   help="how to print the pinned image: ref (default), digest, the form apptainer, podman or "
                        "enroot accepts for this source, or json")
    _ranking_options(s, "select for this platform, not the host's",
                     "keep candidates with unknown org.hpc-compat.* keys (ranked as if absent)")


def _add_check(sub) -> None:
    c = _index_command(sub, "check", "every requirement and NFD rule of every candidate, OK or FAIL",
                       "For every image of an index, every requirement and NFD rule with OK or FAIL and the "
                       "reason (exit 3 if none fits).", "registry reference or oci:DIR[:tag]")
    c.add_argument("--json", action="store_true",
                   help="as JSON (schemas/check.schema.json; NFD rows in `nfd compat validate-node` shape)")
    _ranking_options(c, "check for this platform, not the host's", "evaluate candidates with unknown keys too")


def _add_plan(sub) -> None:
    p = _command(sub, "plan", "rank images for every node class of a cluster",
                 "Read many node profiles (--nodes), group them into classes of equal facts, rank each image "
                 "once per class and print, per class, the chosen variant or the deciding reason, and per "
                 "variant the Slurm --constraint selecting the nodes where it is best (spec/plan.md).")
    p.add_argument("refs", metavar="REF", nargs="+", help="registry reference or oci:DIR[:tag] (one or more)")
    p.add_argument("--nodes", metavar="SOURCE", action="append", required=True,
                   help="node inventory (repeatable): a directory or tarball of profiles named by node, a "
                        "hostlist mapping file, an NFD NodeFeatureList, scontrol show nodes --json, or sinfo -N "
                        "-h -o '%%N %%P %%f' output")
    p.add_argument("--partition", metavar="NAME", help="only the nodes of this Slurm partition")
    p.add_argument("--matrix", action="store_true", help="the images x classes table (= --format matrix)")
    p.add_argument("--json", action="store_true", help="as JSON (schemas/plan.schema.json; = --format json)")
    p.add_argument("--html", metavar="FILE", help="also write a self-contained HTML page with the matrix")
    p.add_argument("--format", choices=["text", "matrix", "json", "slurm-conf", "job"], default=None,
                   help="text (default), matrix, json, slurm-conf (NodeName=... Features=... lines), or job "
                        "(key=value lines for the Slurm cli_filter; exit 3 when nothing fits)")
    _ranking_options(p, "plan for this platform, not the nodes'",
                     "keep candidates with unknown org.hpc-compat.* keys (ranked as if absent)", one_host=False)


def _add_annotate(sub) -> None:
    a = _command(sub, "annotate", "build or rewrite an extended index (for image authors)",
                 "Build an index from variant images (--variant, --variants FILE), or rewrite the annotations "
                 "of an existing index (--set, --unset). Keys may omit the org.hpc-compat. prefix. Everything "
                 "is validated before a push.")
    a.add_argument("dest", nargs="?", help="where the index goes: host/repo:tag or oci:DIR:tag "
                                           "(rewrite mode: also the index to rewrite, unless --from)")
    a.add_argument("--variant", nargs="+", action="append", metavar=("REF", "KEY=VALUE"),
                   help="a variant image and its annotations (repeatable; index order)")
    a.add_argument("--variants", dest="variants_file", metavar="FILE",
                   help="variants file, YAML or JSON (schemas/variants.schema.json)")
    a.add_argument("--from", dest="source", metavar="REF", help="rewrite mode: the index to start from")
    a.add_argument("--set", nargs=2, action="append", metavar=("SELECTOR", "KEY=VALUE"),
                   help="set a key on the descriptors SELECTOR names: all, #N (position, counting from #1: "
                        "the #N validate prints and select --explain shows as 'entry'), sha256:<prefix>, "
                        "os/arch[/variant]")
    a.add_argument("--unset", nargs=2, action="append", metavar=("SELECTOR", "KEY"),
                   help="remove a key from the descriptors SELECTOR names (same selectors as --set; #1 is the first)")
    a.add_argument("--dry-run", action="store_true", help="print the index that would be pushed; push nothing")
    a.add_argument("--nfd", action="store_true",
                   help="also attach to each image an NFD image-compatibility artifact (v1alpha1) generated "
                        "from its annotations (SOURCE_DATE_EPOCH sets its creation time)")
    _network_options(a, 600.0)      # copies and streams whole images
    i = a.add_argument_group("inference (read the images' files, execute nothing)")
    i.add_argument("--infer", action="store_true",
                   help="propose annotations from each image's contents, with their evidence")
    i.add_argument("--write", action="store_true", help="apply the proposals and push (hand-written values win)")
    i.add_argument("--prefer-inferred", action="store_true", help="with --write: inferred values win over hand-written")
    i.add_argument("--path", action="append", metavar="PATH", help="only look at files under PATH (repeatable)")
    i.add_argument("--json", action="store_true", help="proposals and evidence as JSON")
    i.add_argument("--explain", action="store_true", help="proposals with their evidence (the default output)")


def _add_validate(sub) -> None:
    v = _command(sub, "validate", "check an index's annotations, or a variants file",
                 "Every problem of an index's annotations (or of a variants file) with its location; "
                 "exit 0 when clean, 1 when not.")
    v.add_argument("target", metavar="REF|FILE", help="registry reference, oci:DIR[:tag], an index JSON "
                                                      "file or a variants file")
    v.add_argument("--json", action="store_true", help="problems as JSON (schemas/validation.schema.json)")
    _network_options(v, 10.0)


def _add_completion(sub) -> None:
    c = _command(sub, "completion", "print a shell completion script",
                 "Print a completion script for bash, zsh or fish, generated from this parser. "
                 "bash: eval \"$(compat completion bash)\"; zsh: the same in ~/.zshrc; "
                 "fish: compat completion fish > ~/.config/fish/completions/compat.fish")
    c.add_argument("shell", choices=["bash", "zsh", "fish"], help="the shell")


_ADDERS = (("detect", _add_detect), ("select", _add_select), ("check", _add_check), ("plan", _add_plan),
           ("annotate", _add_annotate), ("validate", _add_validate), ("completion", _add_completion))


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


def _one_error(exc: CompatError) -> str:
    """The error as printed: control characters escaped (messages quote images and registries);
    exit 2 is one line, exit 3 keeps its one line per candidate."""
    text = str(exc)
    if exc.exit_code == 2:
        return printable(text, 2000)
    return "\n".join(printable(line, 2000) for line in text.split("\n"))


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    words = [a for a in argv if not a.startswith("-")]
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    try:
        args = parser.parse_args(argv)
        settle(args, parser)
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
