"""NFD's rules (``pkg/apis/nfd/nodefeaturerule/rule.go``) and image-compatibility sets, evaluated
as ``nfd compat validate-node`` does (``pkg/client-nfd/compat/node-validator``, NFD v0.18+):

* a group rule matches when one ``matchAny`` element matches (if any are given) **and** all
  ``matchFeatures`` terms match; an empty ``matchFeatures`` matches;
* a term names a feature (lower-cased before lookup); a feature the host lacks fails the
  term, it is not an error; ``matchName`` is evaluated when the term's expressions held;
* expressions: :mod:`compat.nfd.expression`;
* ``varsTemplate`` (Go text/template, :mod:`compat.nfd.template`) is expanded over the
  elements that matched, once per matching ``matchAny`` element and once for
  ``matchFeatures``; ``vars`` win over it; a matching rule's vars become ``rule.matched``
  attributes for every rule after it, in this set and the sets that follow (all sets share
  one feature object, as in the node validator);
* malformed rules (a bad expression, a template that does not parse or does not yield
  ``key=value`` lines) raise :class:`RuleError`: errors are errors, never a silent false.

Every expression's own status is kept, for ``compat check`` (the rows of
``nfd compat validate-node``).
"""
from __future__ import annotations

from collections.abc import Mapping

from compat.errors import printable
from compat.nfd.expression import OPS, Features, RuleError, check_expression, evaluate_expression, match_multi, \
    match_names  # noqa: F401
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple

BACKREF = "rule.matched"


class Row(Record):
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


class _Matcher(Record):
    """A ``matchFeatures`` list evaluated: its verdict, rows, and NFD's template data."""

    ok: bool
    rows: List[Row]
    matched: Dict[str, Dict[str, list]]      # domain -> feature -> matched elements


def _lookup(features: Features, name: str):
    return features.flags.get(name), features.attributes.get(name), features.instances.get(name)


def _split(feature: str) -> Tuple[str, str]:
    """The template keys of a term: NFD splits the name as written (not lower-cased)."""
    dom, dot, nam = feature.partition(".")
    return (dom, nam) if dot else (feature.lower(), "")


def _check_term(term) -> None:
    if not isinstance(term, Mapping) or not isinstance(term.get("feature"), str):
        raise RuleError(f"a matchFeatures term needs a 'feature' name, got {_short(term)}")
    exprs = term.get("matchExpressions")
    if exprs is not None:
        if not isinstance(exprs, Mapping):
            raise RuleError(f"matchExpressions must be a mapping, got {_short(exprs)}")
        for e in exprs.values():
            check_expression(e)
    if term.get("matchName") is not None:
        check_expression(term["matchName"])


def _short(v) -> str:
    return printable(v, 80)


def _feature_matcher(terms, features: Features) -> _Matcher:
    """NFD's evaluateFeatureMatcher: all terms must match."""
    if terms is None:
        return _Matcher(True, [], {})
    if not isinstance(terms, list):
        raise RuleError(f"matchFeatures must be a list, got {_short(terms)}")
    for term in terms:
        _check_term(term)
    ok_all, rows, matched = True, [], {}
    for term in terms:
        feature = term["feature"].lower()
        dom, nam = _split(term["feature"])
        matched.setdefault(dom, {})
        keys, values, inst = _lookup(features, feature)
        exprs = term.get("matchExpressions")
        name_expr = term.get("matchName")
        if keys is None and values is None and inst is None:
            ok_all = False
            rows += [Row(feature, str(n), e, "matchExpression", False) for n, e in (exprs or {}).items()]
            if name_expr is not None:
                rows.append(Row(feature, "", name_expr, "matchName", False))
            continue
        term_ok, elems = True, []
        if exprs is not None:
            res = match_multi(exprs, keys, values, inst)
            term_ok, elems = res.ok, list(res.elements)
            rows += [Row(feature, str(n), e, "matchExpression", str(n) in res.matched) for n, e in exprs.items()]
        if name_expr is not None:
            name_ok = False
            if term_ok:
                name_ok, name_elems = match_names(name_expr, keys, values, inst)
                elems += name_elems
            rows.append(Row(feature, "", name_expr, "matchName", name_ok))
            term_ok = name_ok
        matched[dom].setdefault(nam, []).extend(elems)
        ok_all = ok_all and term_ok
    rows.sort(key=lambda r: (r.feature, r.name, str(r.expression)))
    return _Matcher(ok_all, rows, matched)


def evaluate_terms(terms, features: Features) -> Tuple[bool, List[Row]]:
    """A ``matchFeatures`` list: all terms must match."""
    m = _feature_matcher(terms, features)
    return m.ok, m.rows


def _template_data(matched):
    # start-up: the text/template interpreter loads only for a rule with a template
    from compat.nfd.template import GoMap
    return GoMap({dom: GoMap({nam: list(elems) for nam, elems in feats.items()}, zero=[])
                  for dom, feats in matched.items()}, zero=GoMap(zero=[]))


def _parse_template(rule: Mapping, name: str):
    text = rule.get("varsTemplate")
    if text in (None, ""):
        return None
    # start-up: the text/template interpreter loads only for a rule with a template
    from compat.nfd.template import TemplateError, parse
    try:
        return parse(text)
    except TemplateError as exc:
        raise RuleError(f"rule {_short(name)}: failed to parse varsTemplate: invalid template: "
                        f"{printable(str(exc), 300)}") from None


def _expand(tree, matched, out: Dict[str, str], name: str) -> None:
    # start-up: the text/template interpreter loads only for a rule with a template
    from compat.nfd.template import TemplateError, expand_map
    try:
        out.update(expand_map(tree, _template_data(matched)))
    except TemplateError as exc:
        raise RuleError(f"rule {_short(name)}: failed to expand varsTemplate: {printable(str(exc), 300)}") from None


def _string_map(value, what: str) -> Dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise RuleError(f"{what} must be a mapping of strings, got {_short(value)}")
    return {str(k): v for k, v in value.items()}


class RuleResult(Record):
    name: str
    ok: bool
    rows: Tuple[Row, ...]                       # matchFeatures rows
    any_rows: Tuple[Tuple[Row, ...], ...] = ()  # one tuple per matchAny alternative
    vars: Mapping[str, str] = {}                # vars + varsTemplate output, when the rule matched

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
    """NFD's ExecuteGroupRule (failFast off). ``labels``/``labelsTemplate`` belong to
    NodeFeatureRule's Rule, not to the GroupRule of an image-compatibility spec: NFD ignores
    them there, and so does compat."""
    if not isinstance(rule, Mapping):
        raise RuleError(f"a rule must be a mapping, got {_short(rule)}")
    name = str(rule.get("name", "") or "")
    own_vars = _string_map(rule.get("vars"), f"rule {name}: vars")
    tree = _parse_template(rule, name)
    out: Dict[str, str] = {}
    any_rows = []
    ok = True
    alts = rule.get("matchAny")
    if alts:
        if not isinstance(alts, list):
            raise RuleError(f"rule {name}: matchAny must be a list")
        any_ok = False
        for alt in alts:
            if not isinstance(alt, Mapping):
                raise RuleError(f"rule {name}: a matchAny element must be a mapping")
            m = _feature_matcher(alt.get("matchFeatures"), features)
            any_rows.append(tuple(m.rows))
            if m.ok and tree is not None:
                _expand(tree, m.matched, out, name)
            any_ok = any_ok or m.ok
        ok = any_ok
    m = _feature_matcher(rule.get("matchFeatures"), features)
    if m.ok and tree is not None and rule.get("matchFeatures"):
        _expand(tree, m.matched, out, name)
    ok = ok and m.ok
    out.update(own_vars)
    return RuleResult(name, ok, tuple(m.rows), tuple(any_rows), out if ok else {})


class SetResult(Record):
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


def _evaluate_set(index: int, compat_set: Mapping, features: Features) -> Tuple[SetResult, Features]:
    """Every rule of the set must match (sets are alternatives; a set is a conjunction). After
    each rule ``rule.matched`` exists, holding the vars of the matching rules so far."""
    _check_set(index, compat_set)
    rules, weight = compat_set["rules"], compat_set.get("weight", 0) or 0
    results = []
    for rule in rules:
        res = evaluate_rule(rule, features)
        results.append(res)
        features = features.with_attributes(BACKREF, res.vars)
    result = SetResult(index, all(r.ok for r in results), tuple(results), weight,
                       str(compat_set.get("tag", "") or ""), str(compat_set.get("description", "") or ""))
    return result, features


def _check_set(index: int, compat_set) -> None:
    """The shape NFD's decoder demands of a compatibility set (a field of the wrong type fails
    the whole spec there, whatever ``--tags`` later picks)."""
    if not isinstance(compat_set, Mapping):
        raise RuleError(f"compatibility set {index + 1} must be a mapping")
    if not isinstance(compat_set.get("rules"), list):
        raise RuleError(f"compatibility set {index + 1}: 'rules' must be a list")
    weight = compat_set.get("weight", 0) or 0
    if not isinstance(weight, int) or isinstance(weight, bool):
        raise RuleError(f"compatibility set {index + 1}: weight must be an integer")
    for field in ("tag", "description"):
        if compat_set.get(field) is not None and not isinstance(compat_set[field], str):
            raise RuleError(f"compatibility set {index + 1}: {field} must be a string")


def evaluate_set(index: int, compat_set: Mapping, features: Features) -> SetResult:
    return _evaluate_set(index, compat_set, features)[0]


def check_spec(spec) -> None:
    if not isinstance(spec, Mapping):
        raise RuleError("the spec must be a mapping")
    if spec.get("version") != "v1alpha1":
        raise RuleError(f"unsupported spec version {spec.get('version')!r} (expected v1alpha1)")
    if not isinstance(spec.get("compatibilities"), list):
        raise RuleError("'compatibilities' must be a list")


def evaluate_spec(spec: Mapping, features: Features, tags: Optional[Iterable[str]] = None) -> List[SetResult]:
    """Each compatibility set (only those tagged with one of ``tags`` when given), in order;
    ``rule.matched`` carries over from set to set."""
    check_spec(spec)
    for i, s in enumerate(spec["compatibilities"]):
        _check_set(i, s)
    wanted = set(tags) if tags else None
    out = []
    for i, s in enumerate(spec["compatibilities"]):
        if wanted is not None and s.get("tag") not in wanted:
            continue
        result, features = _evaluate_set(i, s, features)
        out.append(result)
    return out


def best(results: List[SetResult]) -> Optional[SetResult]:
    """The holding set with the highest weight; ties go to the earlier set."""
    holding = [r for r in results if r.ok]
    return max(holding, key=lambda r: (r.weight, -r.index)) if holding else None
