"""``compat check REF``: for each candidate, each requirement (compat keys, platform
features, compatibility sets) and each NFD rule with OK/FAIL and the reason, the way
``nfd compat validate-node`` reports, plus compat's own verdict."""
from __future__ import annotations

import json
import sys

from compat.cli.common import host_and_features
from compat.cli.select import tags_of


def _nfd_results(sel, cand):
    ctx = sel.nfd
    art = ctx.artifacts.get(cand.digest) if ctx is not None else None
    if art is None:
        return None, None
    from compat.nfd.rules import RuleError, evaluate_spec
    if art.error:
        return art, art.error
    try:
        return art, evaluate_spec(art.spec, ctx.features, ctx.tags)
    except RuleError as exc:
        return art, str(exc)


def to_json(sel) -> dict:
    out = []
    for c in sel.candidates:
        item = {"digest": c.digest, "platform": c.platform_text, "description": c.description,
                "verdict": c.verdict, "reason": c.reason,
                "requirements": [{"dimension": k.dimension, "ok": k.ok, "reason": k.reason}
                                 for k in c.checks if k.reason]}
        art, results = _nfd_results(sel, c)
        if art is not None:
            item["nfd"] = {"artifact": art.digest, "created": art.created,
                           "sets": results if isinstance(results, str) else [r.to_dict() for r in results]}
        out.append(item)
    best = sel.ranking.best
    return {"index": str(sel.ref), "indexDigest": sel.index_digest, "platform": str(sel.ranking.platform),
            "selected": best.digest if best else None, "candidates": out}


def to_text(sel) -> str:
    lines = []
    best = sel.ranking.best
    for c in sel.candidates:
        mark = "SELECTED" if best is not None and c.digest == best.digest and c.compatible else c.verdict.upper()
        lines.append(f"CANDIDATE {c.digest[:19]}  {c.platform_text}  {mark}" +
                     (f"  ({c.description})" if c.description else ""))
        if not c.checks or not c.compatible:
            lines.append(f"  verdict: {c.reason}")
        for k in c.checks:
            if k.reason and k.dimension != "nfd":
                lines.append(f"  {'OK  ' if k.ok else 'FAIL'}  {k.dimension:<16} {k.reason}")
        art, results = _nfd_results(sel, c)
        if art is not None:
            lines.append(f"  NFD artifact {art.digest[:19]} (created {art.created or 'unknown'})")
            if isinstance(results, str):
                lines.append(f"    ERROR  {results}")
            for r in results if not isinstance(results, str) else ():
                head = f"    COMPATIBILITY SET #{r.index + 1} Weight: {r.weight}" + (f"; Tag: {r.tag}" if r.tag else "")
                lines.append(head + f"  {'OK' if r.ok else 'FAIL'}")
                if r.description:
                    lines.append(f"    Description: {r.description}")
                for rule in r.rules:
                    lines.append(f"      RULE: {rule.name or '-'} - {'OK' if rule.ok else 'FAIL'}")
                    for row in rule.rows:
                        lines.append(f"        {'OK  ' if row.ok else 'FAIL'}  {row}  [{row.matcher_type}]")
                    for i, alt in enumerate(rule.any_rows):
                        for row in alt:
                            lines.append(f"        {'OK  ' if row.ok else 'FAIL'}  matchAny[{i}] {row}  [{row.matcher_type}]")
        lines.append("")
    lines.append(f"compat: {'selects ' + sel.reference if best else 'no compatible candidate'}")
    return "\n".join(lines)


def run(args) -> int:
    from compat.api import resolve

    host, features = host_and_features(args)
    sel = resolve(args.ref, host=host, platform=args.platform, allow_unknown=args.allow_unknown,
                  plain_http=args.plain_http, timeout=args.timeout, referrers=args.referrers,
                  tags=tags_of(args), features=features)
    if args.json:
        json.dump(to_json(sel), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(to_text(sel))
    return 0 if sel.ranking.best else 3
