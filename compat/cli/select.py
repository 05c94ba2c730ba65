"""``compat select``: print the pinned image, or explain every candidate."""
from __future__ import annotations

import json
import sys

from compat.cli.common import host_and_features
from compat.errors import NoCompatibleCandidate


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


def explain(sel) -> str:
    out = [f"index    {sel.ref}  ({sel.index_digest})",
           f"host     {host_line(sel.host)}",
           f"select   for {sel.ranking.platform}", ""]
    rows = []
    n = 0
    for c in sel.candidates:
        if c.compatible:
            n += 1
            tag = "SELECTED" if n == 1 else "compatible"
            num = str(n)
        else:
            tag, num = c.verdict, "-"
        rows.append((num, tag, c.platform_text, c.score_text() or "-", c.digest[7:19], c.description, c))
    w = [max(len(r[i]) for r in rows + [("#", "verdict", "platform", "score", "digest", "", None)])
         for i in range(5)]
    out.append(f"{'#':<{w[0]}}  {'verdict':<{w[1]}}  {'platform':<{w[2]}}  {'score':<{w[3]}}  "
               f"{'digest':<{w[4]}}  description")
    for num, tag, plat, score, dig, desc, c in rows:
        out.append(f"{num:<{w[0]}}  {tag:<{w[1]}}  {plat:<{w[2]}}  {score:<{w[3]}}  {dig:<{w[4]}}  {desc}")
        pad = " " * (w[0] + 2)
        out.append(f"{pad}why: {c.reason}")
        for note in c.notes:
            out.append(f"{pad}note: {note}")
    if not sel.candidates:
        out.append("(the index lists no images)")
    out.append("")
    if sel.ranking.best:
        out.append(f"pinned   {sel.reference}")
    else:
        out.append("pinned   nothing: no compatible candidate")
    return "\n".join(out)


def tags_of(args):
    return [t for item in (args.tags or []) for t in item.split(",") if t] or None


def run(args) -> int:
    from compat.api import no_candidate_message, resolve

    host, features = host_and_features(args)
    fmt = "json" if args.json else args.format
    sel = resolve(args.ref, host=host, platform=args.platform, allow_unknown=args.allow_unknown,
                  plain_http=args.plain_http, timeout=args.timeout, referrers=args.referrers,
                  tags=tags_of(args), features=features)
    if args.explain:
        print(explain(sel))
        return 0 if sel.ranking.best else NoCompatibleCandidate.exit_code
    if fmt == "json":
        doc = sel.to_dict() if sel.ranking.best else dict(
            {"reference": None, "digest": None, "index": str(sel.ref), "indexDigest": sel.index_digest,
             "platform": str(sel.ranking.platform)}, candidates=[c.to_dict() for c in sel.candidates])
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0 if sel.ranking.best else NoCompatibleCandidate.exit_code
    if sel.ranking.best is None:
        raise NoCompatibleCandidate(no_candidate_message(sel))
    print(sel.formatted(fmt))
    return 0
