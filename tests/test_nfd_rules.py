"""NFD's rule language against NFD's own test vectors (node-validator_test.go with the fake
source, expression_test.go), with NFD's expected outcomes."""
import pytest

from compat.nfd.rules import Features, RuleError, best, evaluate_expression, evaluate_rule, evaluate_spec

# NFD's fake source (source/fake/fake.go)
FAKE = Features(
    flags={"fake.flag": {"flag_1", "flag_2", "flag_3"}},
    attributes={"fake.attribute": {"attr_1": "true", "attr_2": "false", "attr_3": "10"}},
    instances={"fake.instance": [
        {"name": "instance_1", "attr_1": "true", "attr_2": "false", "attr_3": "10", "attr_4": "foobar"},
        {"name": "instance_2", "attr_1": "true", "attr_2": "true", "attr_3": "100"},
        {"name": "instance_3"}]})


def rule(**kw):
    return evaluate_rule(kw, FAKE)


def In(*v):
    return {"op": "In", "value": list(v)}


def test_fake_1_match_name_regexp():
    r = rule(name="r", matchFeatures=[{"feature": "fake.flag", "matchName": {"op": "InRegexp", "value": ["^flag"]}}])
    assert r.ok and len(r.rows) == 1 and r.rows[0].matcher_type == "matchName" and r.rows[0].name == ""


def test_fake_2_missing_flag_fails_rule_other_rows_kept():
    r = rule(matchFeatures=[{"feature": "fake.flag", "matchExpressions": {"flag_unknown": {"op": "Exists"}}},
                            {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("true")}}])
    assert not r.ok
    assert [(x.feature, x.name, x.ok) for x in r.rows] == [("fake.attribute", "attr_1", True),
                                                          ("fake.flag", "flag_unknown", False)]


def test_fake_3_instance_terms_need_one_instance_each():
    r = rule(matchFeatures=[
        {"feature": "fake.instance", "matchExpressions": {"name": In("instance_1"), "attr_1": In("true")}},
        {"feature": "fake.instance", "matchExpressions": {"name": In("instance_2"), "attr_1": In("false")}}])
    assert not r.ok
    assert [x.ok for x in r.rows if x.name == "attr_1" and x.expression["value"] == ["false"]] == [False]
    assert all(x.ok for x in r.rows if not (x.name == "attr_1" and x.expression["value"] == ["false"]))


def test_fake_4_match_any():
    r = rule(matchAny=[{"matchFeatures": [{"feature": "fake.instance", "matchExpressions": {"name": In("instance_1")}}]},
                       {"matchFeatures": [{"feature": "fake.instance",
                                           "matchExpressions": {"name": In("instance_unknown")}}]}])
    assert r.ok and [alt[0].ok for alt in r.any_rows] == [True, False]


def test_fake_5_unknown_feature_is_no_match_not_error():
    r = rule(matchFeatures=[{"feature": "unknown.unknown", "matchExpressions": {"x": {"op": "Exists"}}}])
    assert not r.ok


def test_fake_6_and_7_match_any_and_match_features_together():
    any_ok = [{"matchFeatures": [{"feature": "fake.instance", "matchExpressions": {"name": In("instance_1")}}]}]
    assert rule(matchAny=any_ok, matchFeatures=[{"feature": "fake.attribute",
                                                 "matchExpressions": {"attr_1": In("true")}}]).ok
    assert not rule(matchAny=any_ok, matchFeatures=[{"feature": "fake.attribute",
                                                     "matchExpressions": {"attr_unknown": In("true")}}]).ok


def test_fake_8_and_9_mixed_terms():
    assert not rule(matchFeatures=[
        {"feature": "fake.flag", "matchExpressions": {"flag_missing": {"op": "Exists"}}},
        {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("true")}},
        {"feature": "fake.instance", "matchExpressions": {"name": In("instance_1")}},
        {"feature": "fake.instance", "matchExpressions": {"name": In("instance_9")}}]).ok
    assert rule(matchFeatures=[
        {"feature": "fake.flag", "matchName": {"op": "In", "value": ["flag_1"]}},
        {"feature": "fake.attribute", "matchExpressions": {"attr_3": {"op": "Gt", "value": ["5"]}}},
        {"feature": "fake.instance", "matchExpressions": {"attr_4": In("foobar")}}]).ok


def test_fake_10_empty_match_features_is_vacuously_true():
    r = rule(matchFeatures=[])
    assert r.ok and r.rows == ()


def test_feature_names_are_case_insensitive():
    assert rule(matchFeatures=[{"feature": "FAKE.Attribute", "matchExpressions": {"attr_1": In("true")}}]).ok


def test_multi_set_and_tags():
    spec = {"version": "v1alpha1", "compatibilities": [
        {"tag": "prefered", "weight": 90, "rules": [{"name": "a", "matchFeatures": [
            {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("false")}}]}]},
        {"tag": "fallback", "weight": 40, "rules": [{"name": "b", "matchFeatures": [
            {"feature": "fake.attribute", "matchExpressions": {"attr_2": In("false")}}]}]}]}
    results = evaluate_spec(spec, FAKE)
    assert [(r.tag, r.weight, r.ok) for r in results] == [("prefered", 90, False), ("fallback", 40, True)]
    assert best(results).tag == "fallback"
    assert [r.tag for r in evaluate_spec(spec, FAKE, tags=["prefered"])] == ["prefered"]
    assert best(evaluate_spec(spec, FAKE, tags=["prefered"])) is None


def test_rule_matched_vars_feed_later_rules():
    spec = {"version": "v1alpha1", "compatibilities": [{"rules": [
        {"name": "first", "vars": {"gpu": "yes"},
         "matchFeatures": [{"feature": "fake.flag", "matchExpressions": {"flag_1": {"op": "Exists"}}}]},
        {"name": "second", "matchFeatures": [{"feature": "rule.matched", "matchExpressions": {"gpu": In("yes")}}]}]}]}
    assert evaluate_spec(spec, FAKE)[0].ok


# -- expression_test.go ---------------------------------------------------------------------------

@pytest.mark.parametrize("expr,valid,value,expected", [
    ({"op": "In", "value": ["1"]}, False, None, False),           # missing input
    ({"op": "NotIn", "value": ["1"]}, False, None, False),        # NotIn on missing is false too
    ({"op": "In", "value": ["1"]}, True, None, False),            # a flag has no value
    ({"op": "Gt", "value": ["2"]}, True, "2", False),
    ({"op": "Gt", "value": ["2"]}, True, "3", True),
    ({"op": "Gt", "value": ["-10"]}, True, "-3", True),
    ({"op": "Ge", "value": ["2"]}, True, "2", True),
    ({"op": "Le", "value": ["2"]}, True, "3", False),
    ({"op": "GtLt", "value": ["1", "10"]}, True, "1", False),
    ({"op": "GtLt", "value": ["1", "10"]}, True, "10", False),
    ({"op": "GtLt", "value": ["1", "10"]}, True, "5", True),
    ({"op": "GeLe", "value": ["1", "10"]}, True, "10", True),
    ({"op": "IsTrue"}, True, "true", True),
    ({"op": "IsTrue"}, True, "True", False),
    ({"op": "IsFalse"}, True, "false", True),
    ({"op": "Gt", "value": ["2.0"], "type": "version"}, True, "2.1", True),
    ({"op": "Gt", "value": ["2.0"], "type": "version"}, True, "2.0", False),
    ({"op": "Ge", "value": ["2.0.1"], "type": "version"}, True, "2.0.1", True),
    ({"op": "Ge", "value": ["2.0.1"], "type": "version"}, True, "2.0.0", False),
    ({"op": "Ge", "value": ["6.8"], "type": "version"}, True, "6.8.0-45-generic", True),
    ({"op": "Exists"}, False, None, False),
    ({"op": "DoesNotExist"}, False, None, True),
    ({"op": ""}, False, None, True),
    ({"op": "InRegexp", "value": ["^AVX"]}, True, "AVX512F", True),
])
def test_expression_outcomes(expr, valid, value, expected):
    assert evaluate_expression(expr, valid, value) is expected


@pytest.mark.parametrize("expr,value", [
    ({"op": "In", "value": []}, "x"),
    ({"op": "NotIn"}, "x"),
    ({"op": "InRegexp", "value": []}, "x"),
    ({"op": "InRegexp", "value": ["("]}, "x"),
    ({"op": "Gt", "value": []}, "1"),
    ({"op": "Gt", "value": ["1", "2"]}, "1"),
    ({"op": "Gt", "value": [""]}, "1"),
    ({"op": "Gt", "value": ["1"]}, "3a"),
    ({"op": "Lt", "value": ["2"]}, "1.0"),
    ({"op": "GtLt", "value": ["2", "1"]}, "1"),
    ({"op": "GeLe", "value": ["1"]}, "1"),
    ({"op": "IsTrue", "value": ["true"]}, "true"),
    ({"op": "IsFalse", "value": ["x"]}, "false"),
    ({"op": "Exists", "value": ["x"]}, None),
    ({"op": "Gte", "value": ["1"]}, "1"),                       # ocifit-k8s spelling: not NFD's
    ({"op": "Gt", "value": ["x.y"], "type": "version"}, "1.0"),
])
def test_expression_errors_are_errors(expr, value):
    with pytest.raises(RuleError):
        evaluate_expression(expr, True, value)


def test_errors_surface_through_rules():
    with pytest.raises(RuleError):
        rule(matchFeatures=[{"feature": "fake.attribute", "matchExpressions": {"attr_3": {"op": "Gt", "value": ["x"]}}}])
    with pytest.raises(RuleError):   # even on a feature the host lacks
        rule(matchFeatures=[{"feature": "nope.nope", "matchExpressions": {"a": {"op": "Teleport"}}}])


def test_flag_and_attribute_union_and_does_not_exist():
    f = Features(flags={"cpu.cpuid": {"AVX2"}}, attributes={"cpu.cpuid": {"AVX10_VERSION": "1"}}, instances={})
    ok = evaluate_rule({"matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {
        "AVX2": {"op": "Exists"}, "AVX10_VERSION": {"op": "In", "value": ["1"]}}}]}, f)
    assert ok.ok
    assert not evaluate_rule({"matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {
        "AVX2": {"op": "DoesNotExist"}}}]}, f).ok
    assert evaluate_rule({"matchFeatures": [{"feature": "cpu.cpuid", "matchExpressions": {
        "AMXTILE": {"op": "DoesNotExist"}}}]}, f).ok


# node-validator_test.go: the rows (feature, name, op, value, isMatch) each case expects, in order
VALIDATOR_ROWS = [
    ("fake_8", [{"feature": "fake.flag", "matchExpressions": {"flag_unknown": {"op": "Exists"}}},
                {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("true")}},
                {"feature": "fake.instance", "matchExpressions": {"name": In("instance_1"), "attr_1": In("true")}},
                {"feature": "fake.instance", "matchExpressions": {"name": In("instance_2"), "attr_1": In("false")}}],
     False, [("fake.attribute", "attr_1", "In", ["true"], True), ("fake.flag", "flag_unknown", "Exists", [], False),
             ("fake.instance", "attr_1", "In", ["false"], False), ("fake.instance", "attr_1", "In", ["true"], True),
             ("fake.instance", "name", "In", ["instance_1"], True),
             ("fake.instance", "name", "In", ["instance_2"], True)]),
    ("fake_9", [{"feature": "fake.flag", "matchName": {"op": "InRegexp", "value": ["^flag"]}},
                {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("true")}},
                {"feature": "fake.instance", "matchExpressions": {"name": In("instance_1")}}],
     True, [("fake.attribute", "attr_1", "In", ["true"], True), ("fake.flag", "", "InRegexp", ["^flag"], True),
            ("fake.instance", "name", "In", ["instance_1"], True)]),
    ("fake_2", [{"feature": "fake.flag", "matchExpressions": {"flag_unknown": {"op": "Exists"}}},
                {"feature": "fake.attribute", "matchExpressions": {"attr_1": In("true")}}],
     False, [("fake.attribute", "attr_1", "In", ["true"], True), ("fake.flag", "flag_unknown", "Exists", [], False)]),
]


@pytest.mark.parametrize("name,terms,ok,rows", VALIDATOR_ROWS, ids=[v[0] for v in VALIDATOR_ROWS])
def test_validate_node_rows(name, terms, ok, rows):
    r = rule(name=name, matchFeatures=terms)
    assert r.ok is ok
    got = [(d["feature"], d["name"], d["expression"]["op"], d["expression"].get("value", []), d["isMatch"])
           for d in r.to_dict()["matchedExpressions"]]
    assert got == rows


@pytest.mark.parametrize("spec", [
    {"version": "v1beta1", "compatibilities": []},
    {"compatibilities": []},
    {"version": "v1alpha1", "compatibilities": {"rules": []}},
    {"version": "v1alpha1", "compatibilities": [{"rules": [{"matchFeatures": [
        {"feature": "fake.flag", "matchExpressions": {"flag_1": ["Exists"]}}]}]}]},   # old shorthand: not NFD's API
    {"version": "v1alpha1", "compatibilities": [{"weight": "5", "rules": []}]},
    {"version": "v1alpha1", "compatibilities": [{"rules": [{"vars": {"a": 1}}]}]},
    {"version": "v1alpha1", "compatibilities": [{"rules": [{"matchFeatures": [
        {"feature": "fake.attribute", "matchExpressions": {"attr_3": {"op": "Gt", "value": [5]}}}]}]}]},
])
def test_malformed_specs_are_errors(spec):
    with pytest.raises(RuleError):
        evaluate_spec(spec, FAKE)


@pytest.mark.parametrize("op,value,vtype", [("Gt", "9" * 5000, None), ("Lt", "-" + "9" * 5000, None),
                                            ("GtLt", "1", None), ("Gt", "1" * 5000 + ".0.0", "version")])
def test_numbers_too_long_for_int64_are_rule_errors(op, value, vtype):
    """Go's Atoi/semver say 'out of range'; Python's int() would refuse 4,300+ digits with a
    ValueError that is not a rule error."""
    from compat.nfd.expression import RuleError, evaluate_expression

    expr = {"op": op, "value": [value] if op != "GtLt" else ["9" * 5000, "1"]}
    if vtype:
        expr["type"] = vtype
    with pytest.raises(RuleError):
        evaluate_expression(expr, True, "5")


@pytest.mark.parametrize("bad_set", [{"tag": ["a", "b"], "rules": []}, {"tag": "a", "weight": "x", "rules": []},
                                     {"tag": "a", "description": 7, "rules": []}])
def test_a_malformed_set_is_an_error_whatever_tags_pick(bad_set):
    """NFD decodes the whole spec before any tag filter: a set of the wrong shape is an error
    even when --tags would skip it."""
    spec = {"version": "v1alpha1", "compatibilities": [{"tag": "ok", "rules": []}, bad_set]}
    for tags in (None, ["ok"], ["a"]):
        with pytest.raises(RuleError):
            evaluate_spec(spec, Features({}, {}, {}), tags)
