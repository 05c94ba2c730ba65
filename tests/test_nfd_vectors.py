"""NFD's own test tables, carried as data (inputs and expected outcomes): expression_test.go
(tests/data/nfd_expression_vectors.json) and expression-api_test.go (MatchMulti,
MatchNamesMulti: verdicts and the matched elements templates see)."""
import json
import os

import pytest

from compat.nfd.expression import RuleError, evaluate_expression, match_multi, match_names

VECTORS = json.load(open(os.path.join(os.path.dirname(__file__), "data", "nfd_expression_vectors.json")))


def expr(v):
    e = {"op": v["op"], "value": v["value"]}
    if v.get("type"):
        e["type"] = v["type"]
    return e


@pytest.mark.parametrize("v", VECTORS["evaluate"], ids=lambda v: v["name"])
def test_evaluate_match_expression(v):
    assert evaluate_expression(expr(v), bool(v["valid"]), v["input"]) is v["result"]


@pytest.mark.parametrize("v", VECTORS["errors"], ids=lambda v: v["name"])
def test_evaluate_match_expression_errors(v):
    with pytest.raises(RuleError):
        evaluate_expression(expr(v), True, v["input"])


@pytest.mark.parametrize("v", VECTORS["keys"], ids=lambda v: "keys-" + v["name"])
def test_evaluate_match_expression_keys(v):
    keys = set(v["input"] or ())
    assert evaluate_expression(expr(v), v["key"] in keys, None) is v["result"]


@pytest.mark.parametrize("v", VECTORS["values"], ids=lambda v: "values-" + v["name"])
def test_evaluate_match_expression_values(v):
    values = v["input"] or {}
    if v["error"]:
        with pytest.raises(RuleError):
            evaluate_expression(expr(v), v["key"] in values, values.get(v["key"]))
    else:
        assert evaluate_expression(expr(v), v["key"] in values, values.get(v["key"])) is v["result"]


def test_the_tables_were_carried_whole():
    assert [len(VECTORS[k]) for k in ("evaluate", "errors", "keys", "values")] == [36, 24, 16, 133]


# -- expression-api_test.go: TestMatchMulti / TestMatchNamesMulti --------------------------------

E, X, In = {"op": "DoesNotExist"}, {"op": "Exists"}, (lambda *v: {"op": "In", "value": list(v)})
MULTI = [
    # name, expressions, keys, values, instances, ok, elements
    ("empty expression and nil input", {}, None, None, None, False, []),
    ("empty expression and empty input keys", {}, set(), {}, [], True, []),
    ("empty expression and empty input values", {}, None, {}, None, True, []),
    ("empty expression and empty input instances", {}, None, None, [], False, []),
    ("empty expression and one empty instance", {}, None, None, [{}], True, [{}]),
    ("keys match", {"foo": E, "bar": X}, {"bar", "baz", "buzz"}, None, None, True, [{"Name": "bar"}, {"Name": "foo"}]),
    ("keys do not match", {"foo": E, "bar": X}, {"foo", "bar", "baz"}, None, None, False, None),
    ("values match", {"foo": X, "bar": In("val", "wal"), "baz": {"op": "Gt", "value": ["10"]}}, None,
     {"foo": "1", "bar": "val", "baz": "123", "buzz": "light"}, None, True,
     [{"Name": "bar", "Value": "val"}, {"Name": "baz", "Value": "123"}, {"Name": "foo", "Value": "1"}]),
    ("instances match", {"foo": X, "bar": {"op": "Lt", "value": ["10"]}}, None, None,
     [{"foo": "1"}, {"foo": "2", "bar": "1"}], True, [{"foo": "2", "bar": "1"}]),
    ("instances do not match", {"foo": X, "baz": {"op": "Lt", "value": ["10"]}}, None, None,
     [{"foo": "1"}, {"bar": "1"}], False, None),
    ("multi: keys and values either matches", {"foo": In("1"), "baz": X}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, True, [{"Name": "baz"}, {"Name": "foo", "Value": "1"}]),
    ("multi: keys and values duplicate match", {"foo": In("1"), "bar": X}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, True,
     [{"Name": "bar"}, {"Name": "bar", "Value": "2"}, {"Name": "foo", "Value": "1"}]),
    ("multi: keys and values NotIn match", {"bar": {"op": "NotIn", "value": ["1", "3"]}}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, True, [{"Name": "bar", "Value": "2"}]),
    ("multi: keys and values NotIn does not match", {"bar": {"op": "NotIn", "value": ["2"]}}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, False, None),
    ("multi: keys and values DoesNotExist match", {"xyzzy": E}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, True, [{"Name": "xyzzy"}, {"Name": "xyzzy", "Value": ""}]),
    ("multi: keys and values DoesNotExist does not match", {"quux": E}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, None, False, None),
    ("multi: keys, values and instances all match", {"foo": In("1"), "bar": X}, {"bar", "baz", "qux"},
     {"foo": "1", "bar": "2", "quux": "3"}, [{"foo": "1", "bar": "2"}, {"foo": "10", "bar": "20"}], True,
     [{"Name": "bar"}, {"Name": "bar", "Value": "2"}, {"Name": "foo", "Value": "1"}, {"bar": "2", "foo": "1"}]),
]


@pytest.mark.parametrize("name,exprs,keys,values,instances,ok,elements", MULTI, ids=[m[0] for m in MULTI])
def test_match_multi(name, exprs, keys, values, instances, ok, elements):
    res = match_multi(exprs, keys, values, instances)
    assert res.ok is ok
    if elements is not None:      # NFD's failFast output is empty on a mismatch; the verdict is what counts
        assert list(res.elements) == elements


@pytest.mark.parametrize("exprs,keys,values,instances", [
    ({"foo": {"op": "Exists", "value": ["val"]}}, {"bar"}, None, None),
    ({"bar": {"op": "In"}}, None, {"foo": "1"}, None),
    ({"foo": {"op": "In"}}, None, None, [{"foo": "1"}]),
])
def test_match_multi_errors(exprs, keys, values, instances):
    with pytest.raises(RuleError):
        match_multi(exprs, keys, values, instances)


NAMES = [
    ("nil input", {"op": ""}, None, None, None, False, []),
    ("empty input keys", {"op": ""}, set(), None, None, False, []),
    ("input keys match", X, {"key1", "key2"}, None, None, True, [{"Name": "key1"}, {"Name": "key2"}]),
    ("input keys do not match", E, {"key1", "key2"}, None, None, False, []),
    ("input values match", In("key1"), None, {"key1": "val1", "key2": "val2"}, None, True,
     [{"Name": "key1", "Value": "val1"}]),
    ("MatchNotIn", {"op": "NotIn", "value": ["key1"]}, None, {"key1": "val1", "key2": "val2"}, None, True,
     [{"Name": "key2", "Value": "val2"}]),
    ("input instances match", In("foo"), None, None, [{"foo": "1"}, {"bar": "2"}, {"foo": "3", "baz": "4"}], True,
     [{"foo": "1"}, {"foo": "3", "baz": "4"}]),
    ("input keys, values and instances match", In("key2"), {"key1", "key2"}, {"key1": "val1", "key2": "val2"},
     [{"key1": "1"}, {"key1": "2"}, {"key1": "3", "key2": "4"}], True,
     [{"Name": "key2"}, {"Name": "key2", "Value": "val2"}, {"key1": "3", "key2": "4"}]),
]


@pytest.mark.parametrize("name,e,keys,values,instances,ok,elements", NAMES, ids=[n[0] for n in NAMES])
def test_match_names_multi(name, e, keys, values, instances, ok, elements):
    assert match_names(e, keys, values, instances) == (ok, tuple(elements))


def test_errors_raised_even_where_nfd_evaluates_nothing():
    """The deliberate difference (spec/interop.md): NFD notices a malformed expression only when
    it evaluates it on a present element; compat refuses it always."""
    with pytest.raises(RuleError):
        evaluate_expression({"op": "Gt", "value": ["x"]}, False, None)
    with pytest.raises(RuleError):
        match_names({"op": "In"}, set(), None, None)
