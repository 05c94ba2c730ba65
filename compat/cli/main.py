"""``compat`` entry point: parse arguments, run one command, map errors to exit codes.

Exit codes (spec/cli.md): 0 success; 1 ``validate`` found problems; 2 bad input (unreadable
reference, malformed index or profile, registry or network failure, bad option); 3 no
compatible candidate.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from compat.errors import CompatError


def _host_options(p: argparse.ArgumentParser, with_host_file: bool = True) -> None:
    g = p.add_argument_group("host")
    g.add_argument("--sysroot", metavar="DIR",
                   help="read /proc, /sys, /etc, /usr, /opt below DIR (another machine's files; "
                        "nothing is executed). Env: COMPAT_SYSROOT")
    g.add_argument("--assume", metavar="KEY=VALUE", action="append", default=[],
                   help="state a host fact instead of detecting it (repeatable), e.g. gpu.cc=9.0")
    if with_host_file:
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


COMMANDS = ("detect", "select", "check", "annotate", "validate")


def build_parser(only: Optional[str] = None) -> argparse.ArgumentParser:
    """The parser; with ``only``, just that command's subparser (argparse construction is a
    measurable part of a per-job call)."""
    p = argparse.ArgumentParser(prog="compat", description="HPC container compatibility resolver: "
                                "detect the host, rank an extended image index, pin the best digest.")
    p.add_argument("--version", action="version", version="compat 0.1.0")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    if only in (None, "detect"):
        _add_detect(sub)
    if only in (None, "select"):
        _add_select(sub)
    if only in (None, "check"):
        _add_check(sub)
    if only in (None, "annotate"):
        _add_annotate(sub)
    if only in (None, "validate"):
        _add_validate(sub)
    return p


def _add_detect(sub) -> None:
    d = sub.add_parser("detect", help="print the host profile")
    d.add_argument("--json", action="store_true", help="print the profile as JSON (schemas/host.schema.json)")
    d.add_argument("--format", choices=["summary", "json", "nfd-features"], default="summary",
                   help="summary (default), json (= --json), or nfd-features: an NFD local feature file "
                        "with what NFD cannot see (for /etc/kubernetes/node-feature-discovery/features.d/)")
    _host_options(d, with_host_file=True)
    d.set_defaults(run="compat.cli.detect")



def _add_select(sub) -> None:
    s = sub.add_parser("select", help="pick the best image of an index for this host")
    s.add_argument("ref", help="registry reference (host/repo[:tag][@digest]) or oci:DIR[:tag]")
    s.add_argument("--explain", action="store_true", help="table of every candidate, its verdict, score and reasons")
    s.add_argument("--json", action="store_true", help="same as --format json")
    s.add_argument("--format", choices=["ref", "digest", "apptainer", "podman", "enroot", "json"],
                   default="ref", help="how to print the pinned image (default: ref)")
    s.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="select for this platform, not the host's")
    s.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the registry")
    s.add_argument("--allow-unknown", action="store_true",
                   help="keep candidates with unknown org.hpc-compat.* keys (ranked as if absent)")
    s.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10 s)")
    _nfd_options(s)
    _host_options(s)
    s.set_defaults(run="compat.cli.select")



def _add_check(sub) -> None:
    c = sub.add_parser("check", help="every requirement and NFD rule of every candidate, OK or FAIL")
    c.add_argument("ref", help="registry reference or oci:DIR[:tag]")
    c.add_argument("--json", action="store_true", help="as JSON (NFD rows in `nfd compat validate-node` shape)")
    c.add_argument("--platform", metavar="OS/ARCH[/VARIANT]", help="check for this platform, not the host's")
    c.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the registry")
    c.add_argument("--allow-unknown", action="store_true", help="evaluate candidates with unknown keys too")
    c.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10 s)")
    _nfd_options(c)
    _host_options(c)
    c.set_defaults(run="compat.cli.check")



def _add_annotate(sub) -> None:
    a = sub.add_parser("annotate", help="build or rewrite an extended index (for image authors)",
                       description="Build an index from variant images (--variant, --variants FILE), or "
                                   "rewrite the annotations of an existing index (--set, --unset). Keys may "
                                   "omit the org.hpc-compat. prefix. Everything is validated before a push.")
    a.add_argument("dest", nargs="?", help="where the index goes: host/repo:tag or oci:DIR:tag "
                                           "(rewrite mode: also the index to rewrite, unless --from)")
    a.add_argument("--variant", nargs="+", action="append", metavar=("REF", "KEY=VALUE"),
                   help="a variant image and its annotations (repeatable; index order)")
    a.add_argument("--variants", dest="variants_file", metavar="FILE",
                   help="variants file, YAML or JSON (schemas/variants.schema.json)")
    a.add_argument("--from", dest="source", metavar="REF", help="rewrite mode: the index to start from")
    a.add_argument("--set", nargs=2, action="append", metavar=("SELECTOR", "KEY=VALUE"),
                   help="set a key on the descriptors SELECTOR names: all, #N (position, counting from #1 "
                        "as validate and select --explain do), sha256:<prefix>, os/arch[/variant]")
    a.add_argument("--unset", nargs=2, action="append", metavar=("SELECTOR", "KEY"),
                   help="remove a key from the descriptors SELECTOR names (same selectors as --set; #1 is the first)")
    a.add_argument("--dry-run", action="store_true", help="print the index that would be pushed; push nothing")
    a.add_argument("--nfd", action="store_true",
                   help="also attach to each image an NFD image-compatibility artifact (v1alpha1) generated "
                        "from its annotations (SOURCE_DATE_EPOCH sets its creation time)")
    a.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the registry")
    a.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-request timeout (default 30 s)")
    i = a.add_argument_group("inference (read the images' files, execute nothing)")
    i.add_argument("--infer", action="store_true",
                   help="propose annotations from each image's contents, with their evidence")
    i.add_argument("--write", action="store_true", help="apply the proposals and push (hand-written values win)")
    i.add_argument("--prefer-inferred", action="store_true", help="with --write: inferred values win over hand-written")
    i.add_argument("--path", action="append", metavar="PATH", help="only look at files under PATH (repeatable)")
    i.add_argument("--json", action="store_true", help="proposals and evidence as JSON")
    i.add_argument("--explain", action="store_true", help="proposals with their evidence (the default output)")
    a.set_defaults(run="compat.cli.annotate")



def _add_validate(sub) -> None:
    v = sub.add_parser("validate", help="check an index's annotations, or a variants file")
    v.add_argument("target", metavar="REF|FILE", help="registry reference, oci:DIR[:tag], an index JSON "
                                                      "file or a variants file")
    v.add_argument("--json", action="store_true", help="problems as JSON")
    v.add_argument("--plain-http", action="store_true", help="talk HTTP, not HTTPS, to the registry")
    v.add_argument("--timeout", type=float, default=10.0, metavar="S", help="per-request timeout (default 10 s)")
    v.set_defaults(run="compat.cli.validate")


def main(argv: Optional[List[str]] = None) -> int:
    words = [a for a in (sys.argv[1:] if argv is None else argv) if not a.startswith("-")]
    parser = build_parser(words[0] if words and words[0] in COMMANDS else None)
    args = parser.parse_args(argv)
    import importlib

    try:
        module = importlib.import_module(args.run)
        return int(module.run(args) or 0)
    except CompatError as exc:
        print(f"compat: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("compat: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # noqa: BLE001 - a bug must still end in one line, not a traceback
        import os
        if os.environ.get("COMPAT_DEBUG"):
            raise
        print(f"compat: internal error: {type(exc).__name__}: {exc} (COMPAT_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 2
