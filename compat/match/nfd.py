"""An NFD image-compatibility artifact attached to the candidate: the candidate is compatible
when one of its compatibility sets holds on the host's NFD features (compat/nfd/rules.py).
Fit: (the best holding set's weight, the number of its rules)."""
from __future__ import annotations


from compat.errors import RuleError
from compat.match.check import Check, fail, ok
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Mapping, Optional


class NfdContext(Record):
    artifacts: Mapping            # manifest digest -> compat.nfd.artifacts.Artifact
    features: object              # compat.nfd.rules.Features
    tags: Optional[Iterable[str]] = None


def check(digest: str, ctx: Optional[NfdContext]) -> Check:
    art = ctx.artifacts.get(digest) if ctx is not None else None
    if art is None:
        return ok("nfd", "", (0, 0))

    if art.error:
        raise RuleError(art.error)                                  # the candidate's verdict: error
    # start-up: NFD's rule language loads only when a candidate has an artifact to evaluate
    from compat.nfd.rules import best, evaluate_spec
    results = evaluate_spec(art.spec, ctx.features, ctx.tags)      # RuleError propagates: an error
    chosen = best(results)
    where = f"NFD artifact {art.digest[7:19]}"
    if not results:
        return fail("nfd", f"{where}: no compatibility set tagged {', '.join(ctx.tags or ())}", results)
    if chosen is None:
        return fail("nfd", f"{where}: no compatibility set holds; {results[0].reason()}", results)
    return ok("nfd", f"{where}: {chosen.reason()}" + (f", weight {chosen.weight}" if chosen.weight else ""),
              (chosen.weight, len(chosen.rules)), detail=results)
