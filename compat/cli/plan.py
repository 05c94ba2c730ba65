"""``compat plan``: rank images once per node class of an inventory (spec/plan.md)."""
from __future__ import annotations

import json
import sys

from compat.errors import BadInput, NoCompatibleCandidate, printable
from compat.plan import render
from compat.plan.batch import plan
from compat.plan.inventory import Inventory, read


def _inventory(args):
    inv = read(args.nodes)
    if not args.partition:
        return inv, None
    nodes = inv.partition_nodes(args.partition)
    if not nodes:
        raise BadInput(f"--partition {printable(args.partition, 100)}: no node of the inventory is in it "
                       "(give a Slurm source: scontrol show nodes --json or sinfo -N -h -o '%N %P %f')")
    keep = {n: inv.hosts[n] for n in nodes if n in inv.hosts}
    problems = {n: inv.problems[n] for n in nodes if n in inv.problems}
    return Inventory(keep, {n: inv.partitions[n] for n in nodes}, inv.features, problems), nodes


def run(args) -> int:
    asked = {f for f, on in (("json", args.json), ("matrix", args.matrix), (args.format, args.format)) if on}
    if len(asked) > 1:
        raise BadInput(f"plan: --json, --matrix and --format {args.format} ask for different outputs; give one")
    fmt = asked.pop() if asked else "text"
    inv, _ = _inventory(args)
    if not inv.hosts:
        raise BadInput("--nodes: no node with a readable profile" +
                       (f" ({printable(next(iter(inv.problems.values())), 300)})" if inv.problems else ""))
    p = plan(args.refs, inv, platform=args.platform, allow_unknown=args.allow_unknown,
             plain_http=args.plain_http, timeout=args.timeout)
    if args.html:
        with open(args.html, "w", encoding="utf-8") as f:
            f.write(render.html_page(p))
    if fmt == "job":
        return _job(p, args)
    if fmt == "json":
        json.dump(p.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        out = {"text": render.text, "matrix": render.matrix, "slurm-conf": render.slurm_conf}[fmt](p)
        sys.stdout.write(out)
    return 0


def _job(p, args) -> int:
    nodes = [n for c in p.classes for n in c.nodes]
    out = render.job(p, nodes)
    if out:
        sys.stdout.write(out)
        return 0
    ip = p.images[0]
    where = f"partition {printable(args.partition, 100)}" if args.partition else "these nodes"
    lines = [f"no variant of {ip.image} runs on {where}:"]
    for c in p.classes:
        lines.append(f"  {c.id} {printable(c.hostlist, 100)}: {printable(ip.reason(c.id), 300)}")
    raise NoCompatibleCandidate("\n".join(lines))
