"""NFD's rule language, evaluated exactly as Node Feature Discovery does
(``pkg/apis/nfd/nodefeaturerule/{expression,rule}.go``, v0.18+):

* a group rule matches when one ``matchAny`` element matches (if any are given) **and** all
  ``matchFeatures`` terms match; an empty ``matchFeatures`` matches;
* a term names a feature (lower-cased before lookup); a feature the host lacks fails the
  term, it is not an error;
* flags and attributes of one feature are a union: an expression holds if it holds on either
  (``DoesNotExist`` must hold on both); instance features need **one instance** satisfying
  every expression of the term;
* ``matchName`` matches element names;
* operators: In, NotIn, InRegexp, Exists, DoesNotExist, Gt, Ge, Lt, Le, GtLt, GeLe, IsTrue,
  IsFalse and the empty op; integer comparisons unless ``type: version`` (semantic version,
  pre-release stripped); on a missing element every operator but Exists/DoesNotExist/any is
  false; on a flag (no value) In/NotIn/... are false;
* malformed expressions (wrong number of values, a non-integer, an invalid regexp, an
  unknown operator) raise :class:`RuleError`: errors are errors, never a silent false.

Every expression's own status is kept, for ``compat check`` (the rows of
``nfd compat validate-node``).
"""
from __future__ import annotations

import re
from typing import Dict, Iterable, List, Mapping, NamedTuple, Optional, Set, Tuple

OPS = ("", "In", "NotIn", "InRegexp", "Exists", "DoesNotExist", "Gt", "Ge", "Lt", "Le", "GtLt", "GeLe",
       "IsTrue", "IsFalse")


class RuleError(ValueError):
    """A malformed rule or expression."""


class Features(NamedTuple):
    """NFD's feature model (``nfd export features``): flags, attributes, instances."""

    flags: Mapping[str, Set[str]]
    attributes: Mapping[str, Mapping[str, str]]
    instances: Mapping[str, List[Mapping[str, str]]]

    def with_attributes(self, feature: str, values: Mapping[str, str]) -> "Features":
        attrs = dict(self.attributes)
        merged = dict(attrs.get(feature, {}))
        merged.update(values)
        attrs[feature] = merged
        return self._replace(attributes=attrs)


def _goregexp(pattern: str):
    # Go's RE2 syntax is close to Python's for the patterns rules use; \z is Python's \Z
    try:
        return re.compile(pattern.replace(r"\z", r"\Z"))
    except re.error as exc:
        raise RuleError(f"invalid regexp {pattern!r} ({exc})") from None


def _int(text: str, what: str) -> int:
    if not re.fullmatch(r"[+-]?\d+", str(text)):
        raise RuleError(f"not a number {text!r}{what}")
    return int(text)


def _version(text: str) -> Tuple[int, ...]:
    """Masterminds semver, leniently (``v`` prefix, 1-3 parts); pre-release/build stripped."""
    t = str(text).strip()
    t = t[1:] if t[:1] in ("v", "V") else t
    t = re.split(r"[-+]", t, maxsplit=1)[0]
    if not re.fullmatch(r"\d+(\.\d+){0,2}", t):
        raise RuleError(f"not a version {text!r}")
    parts = [int(x) for x in t.split(".")]
    return tuple(parts + [0] * (3 - len(parts)))


def evaluate_expression(expr: Mapping, valid: bool, value: Optional[str]) -> bool:
    """One expression against one input (``valid``: the element exists; ``value``: its value,
    None for a flag)."""
    if not isinstance(expr, Mapping):
        raise RuleError(f"expression must be a mapping, got {expr!r}")
    op = expr.get("op", "")
    values = expr.get("value") or []
    if not isinstance(values, list):
        raise RuleError(f"'value' must be a list, got {values!r}")
    values = [str(v) for v in values]
    vtype = expr.get("type", "")
    if op not in OPS:
        raise RuleError(f"invalid Op {op!r}")
    if op in ("", "Exists", "DoesNotExist"):
        if values:
            raise RuleError(f"invalid expression, 'value' field must be empty for Op {op!r} (have {values})")
        return True if op == "" else (valid if op == "Exists" else not valid)
    if not (valid and value is not None):
        return False
    value = str(value)
    if op in ("In", "NotIn", "InRegexp") and not values:
        raise RuleError(f"invalid expression, 'value' field must be non-empty for Op {op!r}")
    if op == "In":
        return value in values
    if op == "NotIn":
        return value not in values
    if op == "InRegexp":
        regs = [_goregexp(v) for v in values]
        return any(r.search(value) for r in regs)
    if op in ("IsTrue", "IsFalse"):
        if values:
            raise RuleError(f"invalid expression, 'value' field must be empty for Op {op!r} (have {values})")
        return value == ("true" if op == "IsTrue" else "false")
    if vtype not in ("", "version"):
        raise RuleError(f"unsupported type {vtype!r}")
    conv = _version if vtype == "version" else (lambda t: _int(t, ""))
    if op in ("Gt", "Ge", "Lt", "Le"):
        if len(values) != 1:
            raise RuleError(f"invalid expression, 'value' field must contain exactly one element for Op {op!r} "
                            f"(have {values})")
        left, right = conv(value), conv(values[0])
        return {"Gt": left > right, "Ge": left >= right, "Lt": left < right, "Le": left <= right}[op]
    # GtLt, GeLe
    if len(values) != 2:
        raise RuleError(f"invalid expression, 'value' field must contain exactly two elements for Op {op!r} "
                        f"(have {values})")
    v = conv(value)
    lo, hi = (conv(x) for x in values)
    if lo >= hi:
        raise RuleError(f"invalid expression, value[0] must be less than value[1] for Op {op!r} (have {values})")
    return (lo < v < hi) if op == "GtLt" else (lo <= v <= hi)


def _match_multi(exprs: Mapping, keys: Optional[Set[str]], values: Optional[Mapping[str, str]],
                 instances: Optional[List[Mapping[str, str]]]) -> bool:
    if not isinstance(exprs, Mapping):
        raise RuleError(f"matchExpressions must be a mapping, got {exprs!r}")
    is_match = keys is not None or values is not None
    for name, e in exprs.items():
        match_k = match_v = False
        if keys is not None:
            match_k = evaluate_expression(e, name in keys, None)
            if not match_k and e.get("op") == "DoesNotExist":
                is_match = False
                continue
        if values is not None:
            match_v = evaluate_expression(e, name in values, values.get(name))
            if not match_v and e.get("op") == "DoesNotExist":
                is_match = False
                continue
        if not match_k and not match_v:
            is_match = False
    inst_match = False
    for inst in instances or ():
        if all(evaluate_expression(e, n in inst, inst.get(n)) for n, e in exprs.items()):
            inst_match = True
    return is_match or inst_match


def _match_names(expr: Mapping, keys, values, instances) -> bool:
    names = list(keys or ()) + list(values or ())
    for inst in instances or ():
        names += list(inst)
    return any(evaluate_expression(expr, True, n) for n in names)


class Row(NamedTuple):
    """One expression's status: the rows ``nfd compat validate-node`` prints."""

    feature: str
    name: str                      # element name; "" for matchName
    expression: Mapping
    matcher_type: str              # matchExpression | matchName
    ok: bool

    def to_dict(self) -> Dict:
        expr = {"op": self.expression.get("op", "")}
        if self.expression.get("value"):
            expr["value"] = [str(v) for v in self.expression["value"]]
        if self.expression.get("type"):
            expr["type"] = self.expression["type"]
        return {"feature": self.feature, "name": self.name, "expression": expr,
                "matcherType": self.matcher_type, "isMatch": self.ok}

    def __str__(self):
        e = self.expression
        what = f"{self.feature}.{self.name}" if self.name else self.feature
        v = e.get("value")
        val = (" [" + ", ".join(map(str, v)) + "]" if isinstance(v, list) else f" {v}") if v else ""
        typ = f" ({e['type']})" if e.get("type") else ""
        return f"{what} {e.get('op', '') or 'any'}{val}{typ}"


def _lookup(features: Features, name: str):
    f = name.lower()
    keys = features.flags.get(f)
    values = features.attributes.get(f)
    inst = features.instances.get(f)
    return keys, values, inst


def evaluate_terms(terms, features: Features) -> Tuple[bool, List[Row]]:
    """A ``matchFeatures`` list: all terms must match."""
    if terms is None:
        return True, []
    if not isinstance(terms, list):
        raise RuleError(f"matchFeatures must be a list, got {terms!r}")
    ok_all = True
    rows: List[Row] = []
    for term in terms:
        if not isinstance(term, Mapping) or not isinstance(term.get("feature"), str):
            raise RuleError(f"a matchFeatures term needs a 'feature' name, got {term!r}")
        feature = term["feature"].lower()
        keys, values, inst = _lookup(features, feature)
        exprs = term.get("matchExpressions")
        name_expr = term.get("matchName")
        if keys is None and values is None and inst is None:
            ok_all = False
            for n, e in (exprs or {}).items():
                evaluate_expression(e, False, None)        # still reject malformed expressions
                rows.append(Row(feature, n, e, "matchExpression", False))
            if name_expr is not None:
                evaluate_expression(name_expr, False, None)
                rows.append(Row(feature, "", name_expr, "matchName", False))
            continue
        term_ok = True
        if exprs is not None:
            term_ok = _match_multi(exprs, keys, values, inst)
            for n, e in exprs.items():
                rows.append(Row(feature, n, e, "matchExpression", _match_multi({n: e}, keys, values, inst)))
        if name_expr is not None:
            name_ok = _match_names(name_expr, keys, values, inst)
            rows.append(Row(feature, "", name_expr, "matchName", name_ok))
            term_ok = term_ok and name_ok
        ok_all = ok_all and term_ok
    rows.sort(key=lambda r: (r.feature, r.name, str(r.expression)))
    return ok_all, rows


class RuleResult(NamedTuple):
    name: str
    ok: bool
    rows: Tuple[Row, ...]                       # matchFeatures rows
    any_rows: Tuple[Tuple[Row, ...], ...] = ()  # one tuple per matchAny alternative

    def to_dict(self) -> Dict:
        d = {"name": self.name, "isMatch": self.ok}
        if self.rows:
            d["matchedExpressions"] = [r.to_dict() for r in self.rows]
        if self.any_rows:
            d["matchedAny"] = [{"matchedExpressions": [r.to_dict() for r in alt]} for alt in self.any_rows]
        return d

    def first_failure(self) -> str:
        for r in self.rows:
            if not r.ok:
                return str(r)
        if self.any_rows:
            return "none of the matchAny alternatives: " + "; ".join(
                next((str(r) for r in alt if not r.ok), "?") for alt in self.any_rows)
        return "no match"


def evaluate_rule(rule: Mapping, features: Features) -> RuleResult:
    if not isinstance(rule, Mapping):
        raise RuleError(f"a rule must be a mapping, got {rule!r}")
    name = str(rule.get("name", ""))
    any_rows = []
    ok = True
    if rule.get("matchAny"):
        if not isinstance(rule["matchAny"], list):
            raise RuleError(f"rule {name}: matchAny must be a list")
        any_ok = False
        for alt in rule["matchAny"]:
            if not isinstance(alt, Mapping):
                raise RuleError(f"rule {name}: a matchAny element must be a mapping")
            alt_ok, rows = evaluate_terms(alt.get("matchFeatures"), features)
            any_rows.append(tuple(rows))
            any_ok = any_ok or alt_ok
        ok = any_ok
    feats_ok, rows = evaluate_terms(rule.get("matchFeatures"), features)
    return RuleResult(name, ok and feats_ok, tuple(rows), tuple(any_rows))


class SetResult(NamedTuple):
    index: int
    ok: bool
    rules: Tuple[RuleResult, ...]
    weight: int
    tag: str
    description: str

    def to_dict(self) -> Dict:
        d: Dict = {"rules": [r.to_dict() for r in self.rules]}
        if self.description:
            d["description"] = self.description
        if self.weight:
            d["weight"] = self.weight
        if self.tag:
            d["tag"] = self.tag
        return d

    def reason(self) -> str:
        label = f"set {self.index + 1}" + (f" ({self.tag})" if self.tag else "")
        if self.ok:
            return f"{label} holds ({len(self.rules)} rule{'s' if len(self.rules) != 1 else ''})"
        bad = next(r for r in self.rules if not r.ok)
        return f"{label}: rule {bad.name or '?'} fails: {bad.first_failure()}"


def evaluate_set(index: int, compat_set: Mapping, features: Features) -> SetResult:
    """Every rule of the set must match (sets are alternatives; a set is a conjunction).
    A matching rule's ``vars`` become ``rule.matched`` attributes for the rules after it."""
    if not isinstance(compat_set, Mapping):
        raise RuleError(f"compatibility set {index + 1} must be a mapping")
    rules = compat_set.get("rules")
    if not isinstance(rules, list):
        raise RuleError(f"compatibility set {index + 1}: 'rules' must be a list")
    results = []
    feats = features
    for rule in rules:
        res = evaluate_rule(rule, feats)
        results.append(res)
        if res.ok and isinstance(rule.get("vars"), Mapping):
            feats = feats.with_attributes("rule.matched", {str(k): str(v) for k, v in rule["vars"].items()})
    weight = compat_set.get("weight", 0) or 0
    if not isinstance(weight, int):
        raise RuleError(f"compatibility set {index + 1}: weight must be an integer")
    return SetResult(index, all(r.ok for r in results), tuple(results), weight,
                     str(compat_set.get("tag", "") or ""), str(compat_set.get("description", "") or ""))


def check_spec(spec) -> None:
    if not isinstance(spec, Mapping):
        raise RuleError("the spec must be a mapping")
    if spec.get("version") != "v1alpha1":
        raise RuleError(f"unsupported spec version {spec.get('version')!r} (expected v1alpha1)")
    if not isinstance(spec.get("compatibilities"), list):
        raise RuleError("'compatibilities' must be a list")


def evaluate_spec(spec: Mapping, features: Features, tags: Optional[Iterable[str]] = None) -> List[SetResult]:
    """Each compatibility set (only those tagged with one of ``tags`` when given), in order."""
    check_spec(spec)
    wanted = set(tags) if tags else None
    out = []
    for i, s in enumerate(spec["compatibilities"]):
        if wanted is not None and (not isinstance(s, Mapping) or s.get("tag") not in wanted):
            continue
        out.append(evaluate_set(i, s, features))
    return out


def best(results: List[SetResult]) -> Optional[SetResult]:
    """The holding set with the highest weight; ties go to the earlier set."""
    holding = [r for r in results if r.ok]
    return max(holding, key=lambda r: (r.weight, -r.index)) if holding else None
