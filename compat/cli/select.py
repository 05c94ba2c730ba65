"""``compat select``: print the pinned image, or explain every candidate."""
from __future__ import annotations

import json
import sys

from compat.api import no_candidate_message, resolve
from compat.cli.common import host_and_features
from compat.cli.refs import source
from compat.errors import BadInput, NoCompatibleCandidate, printable
from compat.match.runtime import for_format


def host_line(h) -> str:
    parts = [f"{h.os.name}/{h.os.arch or '?'}" + (f"/{h.os.variant}" if h.os.variant else ""),
             h.cpu.target or "cpu unknown"]
    if h.gpus is None:
        parts.append("gpus unknown")
    for vendor in ("nvidia", "amd", "intel"):
        gs = h.gpus_of(vendor) or ()
        if gs:
            g = gs[0]
            what = f"cc {g.cc}" if g.cc else (g.gfx or "arch unknown")
            drv = f", driver {g.driver}" if g.driver else ""
            cuda = f" (CUDA {g.cuda})" if g.cuda else ""
            parts.append(f"{len(gs)}x {vendor} {what}{drv}{cuda}")
    ft = h.fabric_types()
    parts.append("fabric unknown" if ft is None else ", ".join(ft) or "tcp")
    if h.mpi:
        parts.append(f"{h.mpi[0].implementation} {h.mpi[0].version or ''}".strip())
    if h.pmi:
        parts.append("pmi " + ",".join(h.pmi))
    return " | ".join(parts)


def runtime_text(rt) -> str:
    """`` with apptainer 1.3.4``: the runtime that will run the image, when one is known."""
    if rt is None:
        return ""
    return f" with {rt.name} {rt.version or '(version unknown)'}"


def explain(sel) -> str:
    """The table of every candidate. Everything that comes from the image (descriptions, reasons
    quoting annotation values, platforms) goes through printable(): one row cannot forge another
    or send terminal escapes."""
    out = [f"index    {printable(str(sel.ref), 300)}  ({sel.index_digest})",
           f"host     {printable(host_line(sel.host), 400)}",
           f"select   for {printable(str(sel.ranking.platform))}{printable(runtime_text(sel.runtime), 200)}", ""]
    rows = []
    n = 0
    for c in sel.candidates:
        if c.compatible:
            n += 1
            tag = "SELECTED" if n == 1 else "compatible"
            num = str(n)
        else:
            tag, num = c.verdict, "-"
        rows.append((num, c.entry, tag, printable(c.platform_text, 60), c.score_text() or "-",
                     printable(c.digest[7:19], 12), printable(c.description), c))
    head = ("rank", "entry", "verdict", "platform", "score", "digest")
    w = [max(len(r[i]) for r in rows + [head]) for i in range(6)]
    out.append("  ".join(f"{h:<{w[i]}}" for i, h in enumerate(head)) + "  description")
    for *cols, desc, c in rows:
        out.append(("  ".join(f"{v:<{w[i]}}" for i, v in enumerate(cols)) + f"  {desc}").rstrip())
        pad = " " * (w[0] + 2)
        out.append(f"{pad}why: {printable(c.reason, 400)}")
        for note in c.notes:
            out.append(f"{pad}note: {printable(note, 400)}")
    if not sel.candidates:
        out.append("(the index lists no images)")
    out.append("")
    if sel.ranking.best:
        out.append(f"pinned   {printable(sel.reference, 400)}")
    else:
        out.append("pinned   nothing: no compatible candidate")
    return "\n".join(out)


def tags_of(args):
    """``--tags a,b --tags c`` -> [a, b, c]; None without the option; an empty list is a slip."""
    if args.tags is None:
        return None
    tags = [t.strip() for item in args.tags for t in item.split(",") if t.strip()]
    if not tags:
        raise BadInput("--tags: name at least one tag (without --tags every compatibility set counts)")
    return tags


def resolve_for(args):
    """The Selection the options describe: REF read with the local-path checks, the host."""
    source(args.ref)
    host, features = host_and_features(args)
    return resolve(args.ref, host=host, platform=args.platform,
                   allow_unknown=args.allow_unknown, plain_http=args.plain_http, timeout=args.timeout,
                   referrers=args.referrers, tags=tags_of(args), features=features, runtime=runtime_of(args))


def runtime_of(args):
    """--runtime, else the runtime --format names (apptainer, podman, enroot), else None (the
    host's first)."""
    return args.runtime or for_format(getattr(args, "format", None))


def run(args) -> int:
    """--explain alone: the table on stdout. With --format or --json too: the table on stderr
    and the asked-for output on stdout (spec/cli.md, "Options that do not combine"). The output
    is made before anything is printed, so a refusal (exit 2) stays one line."""
    sel = resolve_for(args)
    fmt = "json" if args.json else args.format
    found = sel.ranking.best is not None
    if fmt == "json":
        output = json.dumps(sel.to_dict(), indent=2)
    elif found:
        output = sel.formatted(fmt or "ref")
    else:
        output = None
    if args.explain:
        print(explain(sel), file=sys.stderr if fmt else sys.stdout)
        if not fmt:
            return 0 if found else NoCompatibleCandidate.exit_code
    elif output is None:
        raise NoCompatibleCandidate(no_candidate_message(sel))
    if output is not None:
        print(output)
    return 0 if found else NoCompatibleCandidate.exit_code
