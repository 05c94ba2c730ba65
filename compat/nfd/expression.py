"""NFD's match expressions (``pkg/apis/nfd/nodefeaturerule/expression.go``): one expression
against one element, and an expression set against a feature's flags, attributes and
instances, with the elements that matched (what templates see).

* operators: In, NotIn, InRegexp (Go's regexp, i.e. RE2: :mod:`compat.nfd.goregexp`), Exists,
  DoesNotExist, Gt, Ge, Lt, Le, GtLt, GeLe, IsTrue, IsFalse and the empty op; integer
  comparisons unless ``type: version`` (Masterminds semver, loose form, pre-release cleared);
  on a missing element every operator but Exists/DoesNotExist/empty is false; on a flag (no
  value) the value operators are false;
* flags and attributes of one feature are a union: an expression holds if it holds on either
  (``DoesNotExist`` must hold on both); instances need one instance satisfying every
  expression;
* a malformed expression raises :class:`RuleError` -- always, also when the element or the
  feature is absent (:func:`check_expression`; NFD notices only when it evaluates one: a
  deliberate difference, spec/interop.md).
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from compat.errors import RuleError, printable
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set, Tuple

OPS = ("", "In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Ge", "Lt", "Le", "GtLt", "GeLe",
       "IsTrue", "IsFalse")
_NO_VALUE = ("", "Exists", "DoesNotExist", "IsTrue", "IsFalse")
_ONE = ("Gt", "Ge", "Lt", "Le")
_TWO = ("GtLt", "GeLe")

#: a matched element as NFD's templates see it: {"Name": n[, "Value": v]} or an instance's attributes
Element = Mapping[str, str]


class Features(Record):
    """NFD's feature model (``nfd export features``): flags, attributes, instances."""

    flags: Mapping[str, Set[str]]
    attributes: Mapping[str, Mapping[str, str]]
    instances: Mapping[str, List[Mapping[str, str]]]

    def with_attributes(self, feature: str, values: Mapping[str, str]) -> "Features":
        """NFD's ``InsertAttributeFeatures``: the feature is created (even empty) or merged."""
        attrs = dict(self.attributes)
        merged = dict(attrs.get(feature, {}))
        merged.update(values)
        attrs[feature] = merged
        return self._replace(attributes=attrs)


_GO_INT = re.compile(r"[+-]?[0-9]{1,40}")       # longer is out of int64 range anyway (and int() refuses 4,300+ digits)
#: Masterminds/semver v3 looseSemVerRegex (NewVersion with CoerceNewVersion, v3.5)
_SEMVER = re.compile(r"v?([0-9]+)(\.[0-9]+)?(\.[0-9]+)?(-([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?"
                     r"(\+([0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*))?", re.ASCII)
_U64 = 1 << 64


def _int(text: str) -> int:
    """Go's strconv.Atoi (64-bit)."""
    if not _GO_INT.fullmatch(text):
        raise RuleError(f"not a number {text[:40]!r}" + (" (out of range)" if text.strip("+-").isdigit() else ""))
    n = int(text)
    if not -(1 << 63) <= n < (1 << 63):
        raise RuleError(f"not a number {text!r} (out of range)")
    return n


def _version(text: str) -> Tuple[int, int, int]:
    """Masterminds semver's NewVersion, with the pre-release cleared as NFD does."""
    m = _SEMVER.fullmatch(text)
    if not m:
        raise RuleError(f"not a version {text!r}")
    if any(g and len(g) > 41 for g in m.group(1, 2, 3)):           # past uint64 anyway; int() refuses 4,300+
        raise RuleError(f"not a version {text[:40]!r} (segment out of range)")
    parts = tuple(int(g.lstrip(".")) if g else 0 for g in m.group(1, 2, 3))
    if any(p >= _U64 for p in parts):
        raise RuleError(f"not a version {text!r} (segment out of range)")
    for ident in (m.group(5) or "").split(".") if m.group(5) else ():
        if ident.isdigit() and len(ident) > 1 and ident[0] == "0":
            raise RuleError(f"not a version {text!r} (pre-release segment starts with 0)")
    return parts   # type: ignore[return-value]


def _values(expr: Mapping) -> List[str]:
    values = expr.get("value")
    if values is None:
        return []
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise RuleError(f"'value' must be a list of strings, got {_short(values)}")
    return values


def _short(v) -> str:
    return printable(v, 80)


def check_expression(expr) -> Tuple[str, List[str], str]:
    """(op, values, type) of a well-formed expression, else RuleError -- independent of any
    input: the checks NFD makes when it evaluates the expression on an element."""
    if not isinstance(expr, Mapping):
        raise RuleError(f"expression must be a mapping, got {_short(expr)}")
    op = expr.get("op", "")
    if op is None:
        op = ""
    if not isinstance(op, str) or op not in OPS:
        raise RuleError(f"invalid Op {_short(op)}")
    values = _values(expr)
    vtype = expr.get("type") or ""
    if not isinstance(vtype, str):
        raise RuleError(f"'type' must be a string, got {_short(vtype)}")
    if op in _NO_VALUE and values:
        raise RuleError(f"invalid expression, 'value' field must be empty for Op {_short(op)} (have {_short(values)})")
    if op in ("In", "NotIn", "InRegexp") and not values:
        raise RuleError(f"invalid expression, 'value' field must be non-empty for Op {_short(op)}")
    if op == "InRegexp":
        # start-up: google-re2 loads only for InRegexp
        from compat.nfd.goregexp import RegexpError, compile as compile_re
        for v in values:
            try:
                compile_re(v)
            except RegexpError as exc:
                raise RuleError(f"invalid expression, 'value' field must only contain valid regexps for Op "
                                f"'InRegexp' ({_short(v)}: {exc})") from None
    if op in _ONE + _TWO:
        want = 1 if op in _ONE else 2
        if len(values) != want:
            count = "one element" if want == 1 else "two elements"
            raise RuleError(f"invalid expression, 'value' field must contain exactly {count} for Op "
                            f"{_short(op)} (have {_short(values)})")
        if vtype not in ("", "version"):
            raise RuleError(f"invalid expression, 'type' field only accepts 'version' value for Op {_short(op)} "
                            f"(have {_short(vtype)})")
        conv = _version if vtype == "version" else _int
        bounds = [conv(v) for v in values]
        if want == 2 and vtype == "" and bounds[0] >= bounds[1]:
            raise RuleError(f"invalid expression, value[0] must be less than Value[1] for Op {_short(op)} "
                            f"(have {_short(values)})")
    return op, values, vtype


def _evaluate(op: str, values: List[str], vtype: str, valid: bool, value: Optional[str]) -> bool:
    """A checked expression against one input (NFD's evaluateMatchExpression)."""
    if op == "":
        return True
    if op == "Exists":
        return valid
    if op == "DoesNotExist":
        return not valid
    if not (valid and value is not None):
        return False
    value = str(value)
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "InRegexp":
        # start-up: google-re2 loads only for InRegexp
        from compat.nfd.goregexp import match_string
        return any(match_string(v, value) for v in values)
    if op == "IsTrue":
        return value == "true"
    if op == "IsFalse":
        return value == "false"
    conv = _version if vtype == "version" else _int
    v = conv(value)
    bounds = [conv(x) for x in values]
    if op in _ONE:
        r = bounds[0]
        return {"Gt": v > r, "Ge": v >= r, "Lt": v < r, "Le": v <= r}[op]
    lo, hi = bounds
    return (lo < v < hi) if op == "GtLt" else (lo <= v <= hi)


def evaluate_expression(expr: Mapping, valid: bool, value: Optional[str]) -> bool:
    """One expression against one input (``valid``: the element exists; ``value``: its value,
    None for a flag)."""
    return _evaluate(*check_expression(expr), valid, value)


class MultiResult(Record):
    ok: bool
    elements: Tuple[Element, ...]     # in NFD's order: flags/attributes by name, then instances
    matched: frozenset                # the expression names that matched somewhere (validate-node rows)


def _checked(exprs) -> Dict[str, Tuple[str, List[str], str]]:
    if not isinstance(exprs, Mapping):
        raise RuleError(f"matchExpressions must be a mapping, got {_short(exprs)}")
    return {str(n): check_expression(e) for n, e in exprs.items()}


def match_multi(exprs: Mapping, keys: Optional[Set[str]], values: Optional[Mapping[str, str]],
                instances: Optional[List[Mapping[str, str]]]) -> MultiResult:
    """NFD's MatchMulti (failFast off, as ``nfd compat validate-node`` runs it)."""
    checked = _checked(exprs)
    ok = keys is not None or values is not None
    elems: List[Element] = []
    matched = set()
    for name, (op, vals, vtype) in checked.items():
        match_k = match_v = False
        if keys is not None:
            match_k = _evaluate(op, vals, vtype, name in keys, None)
            if match_k:
                elems.append({"Name": name})
                matched.add(name)
            elif op == "DoesNotExist":
                ok = False
                continue
        if values is not None:
            match_v = _evaluate(op, vals, vtype, name in values, values.get(name))
            if match_v:
                elems.append({"Name": name, "Value": values.get(name, "")})
                matched.add(name)
            elif op == "DoesNotExist":
                ok = False
                continue
        if not match_k and not match_v:
            ok = False
    elems.sort(key=lambda e: e["Name"])
    inst_ok = False
    for inst in instances or ():
        hits = {n for n, (op, vals, vtype) in checked.items() if _evaluate(op, vals, vtype, n in inst, inst.get(n))}
        matched |= hits
        if len(hits) == len(checked):
            inst_ok = True
            elems.append(dict(inst))
    return MultiResult(ok or inst_ok, tuple(elems), frozenset(matched))


def match_names(expr: Mapping, keys: Optional[Set[str]], values: Optional[Mapping[str, str]],
                instances: Optional[List[Mapping[str, str]]]) -> Tuple[bool, Tuple[Element, ...]]:
    """NFD's MatchNamesMulti: the expression against element names; instances whose attribute
    names match are matched whole."""
    op, vals, vtype = check_expression(expr)
    elems: List[Element] = [{"Name": k} for k in (keys or ()) if _evaluate(op, vals, vtype, True, k)]
    elems += [{"Name": k, "Value": v} for k, v in (values or {}).items() if _evaluate(op, vals, vtype, True, k)]
    elems.sort(key=lambda e: e["Name"])
    for inst in instances or ():
        if any(_evaluate(op, vals, vtype, True, k) for k in inst):
            elems.append(dict(inst))
    return bool(elems), tuple(elems)
