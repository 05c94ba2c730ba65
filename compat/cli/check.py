"""``compat check REF``: for each candidate, each requirement (compat keys, platform
features, compatibility sets) and each NFD rule with OK/FAIL and the reason, the way
``nfd compat validate-node`` reports, plus compat's own verdict."""
from __future__ import annotations

import json
import sys

from compat.cli.select import resolve_for
from compat.errors import RuleError, printable
from compat.nfd.rules import evaluate_spec


def _nfd_results(sel, cand):
    """(artifact, its sets' results or the error) of a candidate with an NFD artifact. The
    ranking's NFD check carries the results; only a candidate the ranking decided before its
    NFD check (another platform, unknown keys) has its artifact evaluated here."""
    ctx = sel.nfd
    art = ctx.artifacts.get(cand.digest) if ctx is not None else None
    if art is None:
        return None, None
    if art.error:
        return art, art.error
    decided = [k.detail for k in cand.checks if k.dimension == "nfd" and k.detail is not None]
    if decided:
        return art, decided[0]
    try:
        return art, evaluate_spec(art.spec, ctx.features, ctx.tags)
    except RuleError as exc:
        return art, str(exc)


def to_json(sel) -> dict:
    """schemas/check.schema.json: the selection document (the same names as select --json), each
    candidate with its NFD artifact's results where it has one."""
    doc = sel.to_dict(schema="compat.check/v1")
    for item, c in zip(doc["candidates"], sel.candidates):
        art, results = _nfd_results(sel, c)
        if art is not None:
            item["nfd"] = {"artifact": art.digest, "created": art.created,
                           "sets": results if isinstance(results, str) else [r.to_dict() for r in results]}
    return doc


def to_text(sel) -> str:
    """Every candidate, requirement and NFD rule; text from the image escaped (printable)."""
    P = printable
    lines = []
    best = sel.ranking.best
    for c in sel.candidates:
        mark = "SELECTED" if best is not None and c.digest == best.digest and c.compatible else c.verdict.upper()
        lines.append(f"CANDIDATE {c.entry} {P(c.digest[:19], 19)}  {P(c.platform_text, 60)}  {mark}" +
                     (f"  ({P(c.description)})" if c.description else ""))
        if not c.checks or not c.compatible:
            lines.append(f"  verdict: {P(c.reason, 400)}")
        for k in c.checks:
            if k.reason and k.dimension != "nfd":
                lines.append(f"  {'OK  ' if k.ok else 'FAIL'}  {k.dimension:<16} {P(k.reason, 400)}")
        art, results = _nfd_results(sel, c)
        if art is not None:
            lines.append(f"  NFD artifact {P(art.digest[:19], 19)} (created {P(art.created or 'unknown', 60)})")
            if isinstance(results, str):
                lines.append(f"    ERROR  {P(results, 400)}")
            for r in results if not isinstance(results, str) else ():
                head = f"    COMPATIBILITY SET #{r.index + 1} Weight: {P(r.weight, 20)}" + \
                    (f"; Tag: {P(r.tag, 60)}" if r.tag else "")
                lines.append(head + f"  {'OK' if r.ok else 'FAIL'}")
                if r.description:
                    lines.append(f"    Description: {P(r.description)}")
                for rule in r.rules:
                    lines.append(f"      RULE: {P(rule.name or '-', 100)} - {'OK' if rule.ok else 'FAIL'}")
                    for row in rule.rows:
                        lines.append(f"        {'OK  ' if row.ok else 'FAIL'}  {P(str(row), 400)}  "
                                     f"[{P(row.matcher_type, 40)}]")
                    for i, alt in enumerate(rule.any_rows):
                        for row in alt:
                            lines.append(f"        {'OK  ' if row.ok else 'FAIL'}  matchAny[{i}] {P(str(row), 400)}  "
                                         f"[{P(row.matcher_type, 40)}]")
        lines.append("")
    lines.append(f"compat: {'selects ' + P(sel.reference, 400) if best else 'no compatible candidate'}")
    return "\n".join(lines)


def run(args) -> int:
    sel = resolve_for(args)
    if args.json:
        json.dump(to_json(sel), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(to_text(sel))
    return 0 if sel.ranking.best else 3
