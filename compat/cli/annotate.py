"""``compat annotate``: build or rewrite an extended index, check it, push it."""
from __future__ import annotations

import datetime
import json
import os
import sys

from compat.author import annotate as A, variants as V
from compat.author.sif import is_sif_variant
from compat.cli.refs import source as parse_ref  # a local path without oci: is caught here
from compat.errors import BadInput, ProblemsFound, printable as P
from compat.oci.http import Deadline


def _report(problems, quiet: bool = False) -> int:
    """Print the problems on stderr (warnings not with -q); the number of errors."""
    errors = [p for p in problems if p.level == "error"]
    for p in problems:
        if p.level == "error" or not quiet:
            print(f"compat: {P(str(p), 1000)}", file=sys.stderr)
    return len(errors)


def _print_inferred(reports, as_json: bool) -> None:
    if as_json:
        doc = [{"image": r.label, "digest": r.digest,
                "proposed": {p.key: {"value": p.value, "evidence": p.evidence} for p in r.result["proposals"]},
                "unknown": r.result["unknown"], "notes": r.result["notes"], "disagreements": r.disagreements,
                "scanned": {"files": r.result["files"], "bytes": r.result["bytes"]}} for r in reports]
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    for r in reports:
        head = P(r.label if r.digest[:19] in r.label else f"{r.label} {r.digest[:19]}", 400)
        print(f"{head}: {r.result['files']} files of interest, "
              f"{r.result['bytes'] / 1e6:.1f} MB of layers")
        for p in r.result["proposals"]:
            print(f"  org.hpc-compat.{P(p.key, 100)}={P(p.value)}")
            for ev in p.evidence[:6]:
                print(f"      {P(ev['file'], 300)}  [{P(ev['section'], 60)}]  {P(ev['value'])}")
            if len(p.evidence) > 6:
                print(f"      ... {len(p.evidence) - 6} more")
        for key, why in r.result["unknown"].items():
            print(f"  org.hpc-compat.{P(key, 100)}: unknown ({P(why, 400)})")
        for d in r.disagreements:
            print(f"  disagreement: {P(d, 400)}")
        for n in r.result["notes"]:
            print(f"  note: {P(n, 400)}")


def run(args) -> int:
    """Plan (build from variants, or rewrite an index), optionally infer, check, then print
    (--dry-run) or publish."""
    deadline = Deadline(args.timeout)     # --timeout bounds the command's network work, all clients together
    plan, dest = _plan(args, deadline)
    if args.infer:
        plan, reports = A.infer(plan, args.path, write=args.write, prefer_inferred=args.prefer_inferred)
        if not args.write:
            _print_inferred(reports, args.json)
            return 0
        for r in reports if not args.quiet else ():
            for d in r.disagreements:
                print(f"compat: {P(r.label, 200)}: {P(d, 400)}", file=sys.stderr)
    elif args.write or args.prefer_inferred:
        raise BadInput("annotate: --write and --prefer-inferred go with --infer")
    n_errors = _report(plan.problems, args.quiet)
    if n_errors:
        raise ProblemsFound(f"annotate: {n_errors} invalid annotation(s); nothing was pushed")
    if args.dry_run:
        sys.stdout.write(A.serialise(plan.index).decode() + "\n")
        return 0
    if plan.unchanged and not args.nfd and (args.source is None or parse_ref(args.source) == dest):
        if not args.quiet:
            print(f"compat: {P(str(dest), 300)}: unchanged", file=sys.stderr)
        print(plan.source_digest)
        return 0
    created = _nfd_created() if args.nfd else None
    print(A.publish(plan, dest, plain_http=args.plain_http, timeout=args.timeout, nfd_created=created,
                    deadline=deadline))
    return 0


def _plan(args, deadline: Deadline):
    """(plan, destination) from the variants (--variant, --variants FILE) or the edits
    (--set, --unset) of the command line."""
    variants = V.from_command_line(args.variant or [])
    dest_text = args.dest
    index_annotations = {}
    if args.variants_file:
        more, file_dest, index_annotations, problems = V.load_file(args.variants_file)
        if problems:
            for where, message in problems:
                print(f"compat: error: {P(args.variants_file)}: {P(where, 400)}: "
                      f"{P(message, 4000)}", file=sys.stderr)
            raise ProblemsFound(f"{args.variants_file}: {len(problems)} error(s); nothing was pushed")
        variants += more
        dest_text = dest_text or file_dest
    if not dest_text:
        raise BadInput("annotate: name the index to write (DEST, or 'index:' in the variants file)")
    dest = parse_ref(dest_text)
    if not dest.is_layout and dest.digest and not args.dry_run:
        raise BadInput(f"{dest_text}: push to a tag, not a digest")
    for v in variants:                    # the slips of REF arguments, before any network
        if not is_sif_variant(v.ref):
            parse_ref(v.ref)
    edits = A.parse_edits(args.set or [], args.unset or [])
    if variants and edits:
        raise BadInput("annotate: give either --variant/--variants (build) or --set/--unset (rewrite), not both")
    if variants:
        return A.build(variants, index_annotations, plain_http=args.plain_http, timeout=args.timeout,
                       deadline=deadline), dest
    if not edits and not args.infer:
        raise BadInput("annotate: nothing to do (give --variant, --variants FILE, --set/--unset, or --infer)")
    source = parse_ref(args.source) if args.source else dest
    return A.rewrite(source, edits, plain_http=args.plain_http, timeout=args.timeout, deadline=deadline), dest


def _nfd_created() -> str:
    """The NFD artifacts' creation time: SOURCE_DATE_EPOCH (reproducible builds), else now."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = datetime.datetime.fromtimestamp(int(epoch), datetime.timezone.utc) if epoch and epoch.isdigit() \
        else datetime.datetime.now(datetime.timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")
