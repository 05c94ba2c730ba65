"""What ``compat plan`` prints: text per image, the images x classes matrix, JSON
(schemas/plan.schema.json), a self-contained HTML page, ``slurm.conf`` node lines, and the
``job`` lines the Slurm cli_filter reads."""
from __future__ import annotations

import html

from compat.errors import printable
from compat.plan import hostlist

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List, Optional, Sequence

SCHEMA_ID = "compat.plan/v1"


def _host_text(host) -> str:
    gpus = host.gpus
    gpu = "gpu ?" if gpus is None else ("no gpu" if not gpus else
                                        f"{len(gpus)}x {gpus[0].vendor} {gpus[0].cc or gpus[0].gfx or ''}".rstrip())
    fab = "fabric ?" if host.fabrics is None else (",".join(host.fabric_types()) or "tcp")
    mpi = "mpi ?" if host.mpi is None else (",".join(f"{m.implementation} {m.version or ''}".strip()
                                                     for m in host.mpi) or "no mpi")
    plat = f"{host.os.arch or '?'}" + (f"/{host.os.variant}" if host.os.variant else "")
    return printable(f"{plat} {host.cpu.target or '?'} | {gpu} | {fab} | {mpi}", 200)


def _short(c) -> str:
    return f"{printable(c.digest[7:19], 12)}  {printable(c.description, 80)}".rstrip()


def text(plan) -> str:
    lines: List[str] = []
    for cls in plan.classes:
        lines.append(f"class {cls.id}  {len(cls.nodes)} node{'s' if len(cls.nodes) != 1 else ''}  "
                     f"{printable(cls.hostlist, 300)}")
        lines.append(f"   {_host_text(cls.host)}")
    for node, why in sorted(plan.inventory.problems.items()):
        lines.append(f"excluded {printable(node, 100)}: {printable(why, 300)}")
    for i, ip in enumerate(plan.images):
        lines.append("")
        lines.append(f"image {ip.image}" + (f"  ({ip.index_digest[:19]}…)" if ip.index_digest else ""))
        for cls in plan.classes:
            best = ip.choice(cls.id)
            if best is not None:
                lines.append(f"  {cls.id:<5} {printable(cls.hostlist, 60):<24} {_short(best)}")
                lines.append(f"        pinned {ip.pinned(cls.id)}")
            else:
                lines.append(f"  {cls.id:<5} {printable(cls.hostlist, 60):<24} NONE  "
                             f"{printable(ip.reason(cls.id), 300)}")
        for v in plan.variants(i):
            expr = v.constraint if v.constraint is not None else f"(none: {v.constraint_problem})"
            lines.append(f"  variant {v.candidate.digest[7:19]} on {hostlist.compress(v.nodes)}: "
                         f"--constraint={printable(expr, 400) or '(any node)'}")
    return "\n".join(lines) + "\n"


def matrix(plan) -> str:
    """Images x classes: the chosen variant's description (or NONE) in each cell."""
    head = ["image"] + [f"{c.id} ({len(c.nodes)})" for c in plan.classes]
    rows = [head]
    for ip in plan.images:
        row = [printable(ip.image, 60)]
        for c in plan.classes:
            best = ip.choice(c.id)
            row.append(printable(best.description or best.digest[7:19], 30) if best else "NONE")
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    out = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in rows]
    out.append("")
    out.extend(f"{c.id}: {printable(c.hostlist, 300)}  {_host_text(c.host)}" for c in plan.classes)
    return "\n".join(out) + "\n"


def _candidate(c, rank: Optional[int]) -> dict:
    return {"digest": c.digest, "verdict": c.verdict, "rank": rank, "reason": c.reason,
            "description": c.description, "platform": c.platform_text}


def to_dict(plan) -> dict:
    classes = [{"id": c.id, "nodes": c.hostlist, "count": len(c.nodes), "summary": _host_text(c.host),
                "features": list(plan.class_features[c.id]), "host": c.host._replace(sources={}).to_dict()}
               for c in plan.classes]
    images = []
    for i, ip in enumerate(plan.images):
        per = []
        for c in plan.classes:
            best = ip.choice(c.id)
            r = ip.rankings[c.id]
            per.append({"class": c.id, "selected": best.digest if best else None,
                        "reference": ip.pinned(c.id), "description": best.description if best else None,
                        "reason": ip.reason(c.id),
                        "candidates": [_candidate(x, k + 1 if x.compatible else None)
                                       for k, x in enumerate(r.candidates)]})
        variants = [{"digest": v.candidate.digest, "description": v.candidate.description,
                     "classes": list(v.classes), "nodes": hostlist.compress(v.nodes), "count": len(v.nodes),
                     "constraint": v.constraint, "constraintProblem": v.constraint_problem or None}
                    for v in plan.variants(i)]
        images.append({"image": ip.image, "indexDigest": ip.index_digest or None, "classes": per,
                       "variants": variants})
    return {"schema": SCHEMA_ID, "classes": classes,
            "excluded": [{"node": n, "reason": why} for n, why in sorted(plan.inventory.problems.items())],
            "images": images}


def slurm_conf(plan) -> str:
    """``NodeName=<hostlist> Features=<compat's features>`` per class, ready to paste."""
    return "".join(f"NodeName={c.hostlist} Features={','.join(plan.class_features[c.id])}\n"
                   for c in plan.classes)


def job(plan, nodes: Sequence[str], image: int = 0) -> str:
    """For the cli_filter: the variant best on most of ``nodes``, its pinned reference, and the
    constraint keeping the job on the nodes where it is best. ``key=value`` lines."""
    ip = plan.images[image]
    variants = plan.variants(image, nodes)
    if not variants:
        return ""
    v = variants[0]
    pinned = ip.pinned(v.classes[0])
    lines = [f"pinned={pinned}", f"digest={v.candidate.digest}", f"nodes={hostlist.compress(v.nodes)}"]
    if v.constraint is not None:
        lines.append(f"constraint={v.constraint}")
    return "\n".join(lines) + "\n"


_COLOURS = {"ok": "#b7e4c7", "none": "#f4a6a6"}


def html_page(plan) -> str:
    """A self-contained page: the matrix, a cell per image x class, coloured by verdict, the
    reason on hover (title attribute). No script, no external resource."""
    e = html.escape
    head = "".join(f"<th title=\"{e(_host_text(c.host))}\">{e(c.id)}<br><small>{e(c.hostlist)}</small></th>"
                   for c in plan.classes)
    rows = []
    for ip in plan.images:
        cells = []
        for c in plan.classes:
            best = ip.choice(c.id)
            if best is not None:
                cells.append(f"<td class=\"ok\" title=\"{e(best.reason)}\">{e(best.description or best.digest[7:19])}"
                             f"<br><code>{e(best.digest[7:19])}</code></td>")
            else:
                cells.append(f"<td class=\"none\" title=\"{e(ip.reason(c.id))}\">none</td>")
        rows.append(f"<tr><th>{e(ip.image)}</th>{''.join(cells)}</tr>")
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>compat plan</title><style>"
            "body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #888;padding:4px}"
            f"td.ok{{background:{_COLOURS['ok']}}}td.none{{background:{_COLOURS['none']}}}"
            "</style></head><body><h1>compat plan</h1><table id=\"matrix\">"
            f"<tr><th>image</th>{head}</tr>{''.join(rows)}</table></body></html>\n")
