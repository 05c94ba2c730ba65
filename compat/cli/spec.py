"""What each command accepts, written once against argparse's ``add_argument`` interface:
the argparse parser (``cli/parser.py``) and the fast path of the hot commands (``cli/fast.py``,
no argparse) are both built by these functions, so the two cannot drift apart."""
from __future__ import annotations

from compat.cli.options import runtime_value, timeout_value

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
#: argparse.SUPPRESS (the same string; tests/test_cli_fast.py checks), without importing argparse
SUPPRESS = "==SUPPRESS=="


def quiet_option(p, top: bool = False) -> None:
    p.add_argument("-q", "--quiet", action="store_true", default=False if top else SUPPRESS,
                   help="no progress or warnings on stderr (errors still)")


def _network_options(p, default_timeout: float) -> None:
    p.add_argument("--plain-http", action="store_true",
                   help="talk HTTP, not HTTPS, to the registry. Env: COMPAT_PLAIN_HTTP")
    p.add_argument("--timeout", type=timeout_value, metavar="S", default=None,
                   help=f"bound on the command's total network time, in seconds (default {default_timeout:g}; "
                        f"above 0, at most a day). Env: COMPAT_TIMEOUT")
    p.set_defaults(default_timeout=default_timeout)


def _host_options(p) -> None:
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


def _nfd_options(p) -> None:
    g = p.add_argument_group("NFD image-compatibility artifacts")
    r = g.add_mutually_exclusive_group()
    r.add_argument("--referrers", dest="referrers", action="store_const", const=True, default=None,
                   help="look for NFD artifacts of every candidate (default: only of candidates "
                        "without org.hpc-compat.* annotations)")
    r.add_argument("--no-referrers", dest="referrers", action="store_const", const=False,
                   help="never look for NFD artifacts (saves two requests per such candidate)")
    g.add_argument("--tags", action="append", metavar="TAG[,TAG]",
                   help="use only the NFD compatibility sets with one of these tags")


def _command(sub, name: str, summary: str, description: str):
    c = sub.add_parser(name, help=summary, description=description, epilog=EPILOG)
    quiet_option(c)
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


def _index_command(sub, name: str, summary: str, description: str, ref_help: str):
    """A command that reads one index: its parser with the REF argument."""
    p = _command(sub, name, summary, description)
    p.add_argument("ref", metavar="REF", help=ref_help)
    return p


def _ranking_options(p, platform_help: str, unknown_help: str,
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
                   help="a variant and its annotations (repeatable; index order): an image reference, "
                        "or a SIF file (a regular file, e.g. app.sif, pushed as the ORAS artifact "
                        "apptainer push writes)")
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


def add_commands(sub, only=None) -> None:
    """Every command's parser on ``sub`` (argparse's subparsers action, or cli/fast.py's
    recorder); with ``only``, just that command's."""
    for name, add in _ADDERS:
        if only in (None, name):
            add(sub)
