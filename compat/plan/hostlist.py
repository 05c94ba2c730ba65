"""Slurm hostlist expressions, both ways: ``gpu[001-003,7],login1`` <-> node names.

The rules are Slurm's (src/common/hostlist.c, one bracket range per name in this version):
a name is a prefix, an optional ``[ranges]`` and an optional suffix; ranges are ``N`` or
``N-M`` separated by commas; a range keeps the zero padding of its lower bound. Commas
outside brackets separate names. Expansion is bounded (limits.PLAN_NODES).
"""
from __future__ import annotations

import re

from compat import limits
from compat.errors import BadInput, printable

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Tuple



def _numbered(name: str):
    """(prefix, digits) when ``name`` ends in digits, else None (a scan, not a regex: linear)."""
    i = len(name)
    while i and name[i - 1].isascii() and name[i - 1].isdigit():
        i -= 1
    return (name[:i], name[i:]) if 0 < len(name) - i <= 18 else None     # longer: kept as a plain name


def _split_top(expr: str) -> List[str]:
    """Split on commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(expr):
        if ch == "[":
            depth += 1
            if depth > 1:
                raise BadInput(f"hostlist {printable(expr, 120)}: nested '['")
        elif ch == "]":
            depth -= 1
            if depth < 0:
                raise BadInput(f"hostlist {printable(expr, 120)}: ']' without '['")
        elif ch == "," and depth == 0:
            parts.append(expr[start:i])
            start = i + 1
    if depth:
        raise BadInput(f"hostlist {printable(expr, 120)}: '[' without ']'")
    parts.append(expr[start:])
    return [p.strip() for p in parts if p.strip()]


def _ranges(body: str, expr: str) -> List[str]:
    out: List[str] = []
    for piece in body.split(","):
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", piece.strip())
        if not m:
            raise BadInput(f"hostlist {printable(expr, 120)}: bad range {printable(piece, 40)!r}")
        lo, hi = m.group(1), m.group(2) or m.group(1)
        if len(lo) > 18 or len(hi) > 18 or int(hi) < int(lo):
            raise BadInput(f"hostlist {printable(expr, 120)}: bad range {printable(piece, 40)!r}")
        if int(hi) - int(lo) + 1 > limits.PLAN_NODES:
            raise BadInput(f"hostlist {printable(expr, 120)}: more than {limits.PLAN_NODES} nodes "
                           "(limits.PLAN_NODES)")
        width = len(lo)
        out.extend(str(n).zfill(width) for n in range(int(lo), int(hi) + 1))
    return out


def expand(expr: str) -> List[str]:
    """``gpu[01-03],login`` -> ``['gpu01', 'gpu02', 'gpu03', 'login']`` (order kept, repeats dropped)."""
    if not isinstance(expr, str):
        raise BadInput("hostlist: expected text")
    names: Dict[str, None] = {}
    for part in _split_top(expr):
        m = re.fullmatch(r"([^\[\]]*)\[([^\[\]]*)\]([^\[\]]*)", part)
        if m:
            for n in _ranges(m.group(2), expr):
                names[m.group(1) + n + m.group(3)] = None
        elif "[" in part or "]" in part:
            raise BadInput(f"hostlist {printable(expr, 120)}: more than one bracket in {printable(part, 60)!r}")
        else:
            names[part] = None
        if len(names) > limits.PLAN_NODES:
            raise BadInput(f"hostlist {printable(expr, 120)}: more than {limits.PLAN_NODES} nodes "
                           "(limits.PLAN_NODES)")
    return list(names)


def compress(names: Iterable[str]) -> str:
    """Node names -> the shortest-form hostlist Slurm prints: names grouped by prefix and number
    width, sorted, consecutive numbers as ``a-b``: ``gpu[001-003,007],login1``."""
    groups: Dict[Tuple[str, int], List[int]] = {}
    plain: List[str] = []
    for name in dict.fromkeys(names):
        m = _numbered(name)
        if m:
            groups.setdefault((m[0], len(m[1])), []).append(int(m[1]))
        else:
            plain.append(name)
    out = []
    for (prefix, width), nums in sorted(groups.items()):
        nums = sorted(set(nums))
        if len(nums) == 1:
            out.append(f"{prefix}{str(nums[0]).zfill(width)}")
            continue
        spans, start, prev = [], nums[0], nums[0]
        for n in nums[1:] + [None]:
            if n is not None and n == prev + 1:
                prev = n
                continue
            lo, hi = str(start).zfill(width), str(prev).zfill(width)
            spans.append(lo if start == prev else f"{lo}-{hi}")
            if n is not None:
                start = prev = n
        out.append(f"{prefix}[{','.join(spans)}]")
    return ",".join(out + sorted(plain))
