"""varsTemplate (and the same machinery for labelsTemplate): NFD's rule_test.go /
grouprule_test.go TestTemplating tables, the templates of NFD's docs and samples, the
constructs compat refuses, and rule.matched shared across compatibility sets."""
import pytest

from compat import limits
from compat.nfd.rules import Features, RuleError, evaluate_rule, evaluate_spec
from compat.nfd.template import TemplateError, expand_map, parse

# grouprule_test.go TestTemplating's features
F = Features(
    flags={"domain_1.kf_1": {"key-a", "key-b", "key-c"}, "domain.mf": {"key-a", "key-b", "key-c"}},
    attributes={"domain_1.vf_1": {"key-1": "val-1", "keu-2": "val-2", "key-3": "val-3", "key-4": "val-4"},
                "domain.mf": {"key-d": "val-d", "key-e": "val-e"}},
    instances={"domain_1.if_1": [{"attr-1": "1", "attr-2": "val-2"}, {"attr-1": "10", "attr-2": "val-20"},
                                 {"attr-1": "100", "attr-2": "val-200"},
                                 {"attr-1": "1000", "attr-2": "val-2000", "attr-3": "3000"}]})

R1_TERMS = [
    {"feature": "domain_1.kf_1", "matchExpressions": {"key-a": {"op": "Exists"}, "key-c": {"op": "Exists"},
                                                      "foo": {"op": "DoesNotExist"}}},
    {"feature": "domain_1.vf_1", "matchExpressions": {"key-1": {"op": "In", "value": ["val-1", "val-2"]},
                                                      "bar": {"op": "DoesNotExist"}}},
    {"feature": "domain_1.if_1", "matchExpressions": {"attr-1": {"op": "Lt", "value": ["100"]}}},
    {"feature": "domain_1.if_1", "matchExpressions": {"attr-1": {"op": "Exists"}, "attr-2": {"op": "Exists"},
                                                      "attr-3": {"op": "Exists"}}},
]
R1_TEMPLATE = """
var-1=will-be-overridden
var-2=
{{range .domain_1.kf_1}}kf-{{.Name}}=true
{{end}}
{{range .domain_1.vf_1}}vf-{{.Name}}=vf-{{.Value}}
{{end}}
{{range .domain_1.if_1}}if-{{index . "attr-1"}}_{{index . "attr-2"}}=present
{{end}}"""
R1_VARS = {"var-1": "var-val-1", "var-2": "", "kf-key-a": "true", "kf-key-c": "true", "kf-foo": "true",
           "vf-key-1": "vf-val-1", "vf-bar": "vf-", "if-1_val-2": "present", "if-10_val-20": "present",
           "if-1000_val-2000": "present"}


def test_group_rule_templating_vars():
    r1 = {"vars": {"var-1": "var-val-1"}, "varsTemplate": R1_TEMPLATE, "matchFeatures": R1_TERMS}
    res = evaluate_rule(r1, F)
    assert res.ok and dict(res.vars) == R1_VARS
    r2 = {"vars": {"var-1": "var-val-1"}, "varsTemplate": R1_TEMPLATE, "matchAny": [{"matchFeatures": R1_TERMS}]}
    assert dict(evaluate_rule(r2, F).vars) == R1_VARS


def test_multi_type_feature_template():
    r3 = {"varsTemplate": "\n{{range .domain.mf}}mf-{{.Name}}=found\n{{end}}",
          "matchFeatures": [{"feature": "domain.mf", "matchExpressions": {
              "key-a": {"op": "Exists"}, "key-d": {"op": "In", "value": ["val-d"]}}}]}
    assert dict(evaluate_rule(r3, F).vars) == {"mf-key-a": "found", "mf-key-d": "found"}


R4 = [{"feature": "domain_1.kf_1", "matchExpressions": {"key-a": {"op": "Exists"}}}]


@pytest.mark.parametrize("template,vars_", [("foo=bar", {"foo": "bar"}), ("foo", None), ("{{", None)])
def test_template_error_cases(template, vars_):
    rule = {"varsTemplate": template, "matchFeatures": R4}
    if vars_ is None:
        with pytest.raises(RuleError):
            evaluate_rule(rule, F)
    else:
        assert dict(evaluate_rule(rule, F).vars) == vars_


def test_match_name_elements_join_the_expression_elements():
    r5 = {"varsTemplate": "{{range .domain_1.vf_1}}{{.Name}}={{.Value}}\n{{end}}",
          "matchFeatures": [{"feature": "domain_1.vf_1", "matchExpressions": {"key-5": {"op": "DoesNotExist"}},
                             "matchName": {"op": "In", "value": ["key-1", "key-4"]}}]}
    assert dict(evaluate_rule(r5, F).vars) == {"key-1": "val-1", "key-4": "val-4", "key-5": ""}
    r5 = {"vars": {"should-not-match": "true"},
          "matchFeatures": [{"feature": "domain_1.vf_1", "matchName": {"op": "In", "value": ["key-not-exists"]}}]}
    res = evaluate_rule(r5, F)
    assert not res.ok and dict(res.vars) == {}


def test_labels_template_vector_through_the_same_machinery():
    """rule_test.go's labelsTemplate expectations, expanded over the same matched elements
    (an image-compatibility rule is a GroupRule: NFD ignores labelsTemplate there, so does compat)."""
    labels_tmpl = """
label-1=will-be-overridden
label-2=
{{range .domain_1.kf_1}}kf-{{.Name}}=present
{{end}}
{{range .domain_1.vf_1}}vf-{{.Name}}=vf-{{.Value}}
{{end}}
{{range .domain_1.if_1}}if-{{index . "attr-1"}}_{{index . "attr-2"}}=present
{{end}}"""
    from compat.nfd.rules import _feature_matcher, _template_data
    labels = expand_map(parse(labels_tmpl), _template_data(_feature_matcher(R1_TERMS, F).matched))
    labels.update({"label-1": "label-val-1"})
    assert labels == {"label-1": "label-val-1", "label-2": "", "kf-key-a": "present", "kf-key-c": "present",
                      "kf-foo": "present", "vf-key-1": "vf-val-1", "vf-bar": "vf-", "if-1_val-2": "present",
                      "if-10_val-20": "present", "if-1000_val-2000": "present"}
    assert evaluate_rule({"labelsTemplate": "{{", "matchFeatures": R4}, F).ok     # ignored, as NFD does


# -- the templates of NFD's documentation and sample rules ----------------------------------------

PCI = Features(flags={}, attributes={"memory.nv": {}},
               instances={"pci.device": [{"vendor": "8086", "class": "0200", "device": "1593"},
                                         {"vendor": "8086", "class": "0200", "device": "1592"},
                                         {"vendor": "10de", "class": "0302", "device": "2330"}]})
PCI_TERM = [{"feature": "pci.device", "matchExpressions": {"vendor": {"op": "In", "value": ["8086"]},
                                                           "class": {"op": "In", "value": ["0200"]}}}]


@pytest.mark.parametrize("template,expected", [
    ("{{ range .pci.device }}vendor-{{ .class }}-{{ .device }}.present=true\n{{ end }}",
     {"vendor-0200-1593.present": "true", "vendor-0200-1592.present": "true"}),
    ("num-intel-network-controllers={{ .pci.device | len }}\n"
     "first-intel-network-controllers={{ (.pci.device | first).class | trim | substr 0 63 }}",
     {"num-intel-network-controllers": "2", "first-intel-network-controllers": "0200"}),
    ("{{ if gt (len .pci.device ) 0 }}nics.present=true{{ end }}", {"nics.present": "true"}),
    ("{{- range .pci.device -}}\n  {{ .device | upper }}={{ add 1 2 }}\n{{ end -}}", {"1593": "3", "1592": "3"}),
    ("{{/* a comment */}}k={{ with .pci.device }}{{ len . }}{{ else }}none{{ end }}", {"k": "2"}),
    ("k={{ if eq (index (first .pci.device) \"vendor\") \"10de\" }}nv{{ else if true }}intel{{ end }}",
     {"k": "intel"}),
])
def test_documentation_templates(template, expected):
    res = evaluate_rule({"varsTemplate": template, "matchFeatures": PCI_TERM}, PCI)
    assert dict(res.vars) == expected


@pytest.mark.parametrize("template,construct", [
    ('{{ env "PATH" }}', 'function "env" not defined'),
    ('{{ $x := 1 }}k={{ $x }}', "variable declaration"),
    ("{{ range $i, $e := .pci.device }}{{ end }}", "variable declaration"),
    ('{{ define "x" }}{{ end }}', "{{define}}"),
    ('{{ template "x" }}', "{{template}}"),
    ("{{ range .pci.device }}{{ break }}{{ end }}", "{{break}}"),
    ('{{ printf "%d" 1 }}', 'the function "printf"'),
    ("k={{ 1.5 }}", "floating-point constant"),
    ("k={{ 'a' }}", "character constant"),
])
def test_unsupported_constructs_are_named(template, construct):
    assert construct in _template_error(template, "varsTemplate")


def _template_error(template: str, match: str) -> str:
    """The RuleError of a rule on the PCI devices with this varsTemplate (one is required)."""
    with pytest.raises(RuleError, match=match) as err:
        evaluate_rule({"varsTemplate": template, "matchFeatures": PCI_TERM}, PCI)
    return str(err.value)


def test_template_parse_errors_are_errors_even_when_the_rule_fails():
    with pytest.raises(RuleError, match="failed to parse varsTemplate"):
        evaluate_rule({"varsTemplate": "{{ if }}", "matchFeatures": [{"feature": "nope.nope"}]}, PCI)


@pytest.mark.parametrize("template,message", [
    ("{{ range .pci.device }}{{ .Name }}=x\n{{ end }}", 'map has no entry for key "Name"'),    # missingkey=error
    ("k={{ .cpu.cpuid }}", 'map has no entry for key "cpu"'),
    ('k={{ lt 1 "2" }}', "incompatible types for comparison"),
    ("k={{ index .pci.device 7 }}", "index out of range"),
])
def test_execution_errors(template, message):
    assert message in _template_error(template, "failed to expand varsTemplate")


def test_template_keys_keep_the_case_the_rule_wrote():
    """NFD splits term.Feature as written: a rule on system.osRelease is .system.osRelease."""
    f = Features(flags={}, attributes={"system.osrelease": {"ID": "rhel"}}, instances={})
    term = [{"feature": "system.osRelease", "matchExpressions": {"ID": {"op": "Exists"}}}]
    assert dict(evaluate_rule({"varsTemplate": "{{ range .system.osRelease }}{{ .Name }}={{ .Value }}{{ end }}",
                               "matchFeatures": term}, f).vars) == {"ID": "rhel"}
    with pytest.raises(RuleError):
        evaluate_rule({"varsTemplate": "{{ range .system.osrelease }}{{ end }}", "matchFeatures": term}, f)


# -- bounds ---------------------------------------------------------------------------------------

def test_template_size_is_capped_like_nfd():
    parse("a" * limits.TEMPLATE_BYTES)
    with pytest.raises(TemplateError, match="maximum allowed size"):
        parse("a" * (limits.TEMPLATE_BYTES + 1))
    with pytest.raises(TemplateError):
        parse("{{if 1}}" * 600_000)


def test_nested_ranges_cannot_explode():
    """Without variables the dot inside a range is an element, so NFD data cannot nest ranges;
    the step and output bounds hold for any data all the same."""
    level = ["x"]
    for _ in range(6):
        level = [level] * 50                              # 50**6 leaves, shared, cheap to build
    deep = "{{range .}}" * 6 + "{{end}}" * 6
    with pytest.raises(TemplateError, match="execution steps"):
        expand_map(parse(deep), level)
    wide = "{{range .}}" * 3 + "x" * 1000 + "{{end}}" * 3   # 125 MB of output
    with pytest.raises(TemplateError, match="output larger"):
        expand_map(parse(wide), level)


# -- rule.matched: vars feed later rules and later sets (one shared feature object) ----------------

FAKE = Features(flags={"fake.flag": {"flag_1", "flag_2"}}, attributes={}, instances={})


def test_template_vars_feed_later_rules_and_sets():
    spec = {"version": "v1alpha1", "compatibilities": [
        {"tag": "first", "rules": [
            {"name": "producer", "varsTemplate": "{{ range .fake.flag }}has-{{ .Name }}=yes\n{{ end }}",
             "matchFeatures": [{"feature": "fake.flag", "matchName": {"op": "InRegexp", "value": ["^flag_"]}}]},
            {"name": "same set", "matchFeatures": [{"feature": "rule.matched",
                                                    "matchExpressions": {"has-flag_1": {"op": "IsTrue"}}}]}]},
        {"tag": "second", "rules": [
            {"name": "later set", "matchFeatures": [{"feature": "rule.matched", "matchExpressions": {
                "has-flag_2": {"op": "In", "value": ["yes"]}}}]}]}]}
    results = evaluate_spec(spec, FAKE)
    assert not results[0].ok          # IsTrue needs "true": "yes" is not
    assert results[1].ok              # the first set's vars are visible to the second set
    # --tags drops the first set: its vars never exist
    assert not evaluate_spec(spec, FAKE, tags=["second"])[0].ok


def test_vars_of_a_failing_rule_are_not_kept_but_rule_matched_exists():
    spec = {"version": "v1alpha1", "compatibilities": [{"rules": [
        {"name": "fails", "vars": {"x": "1"}, "matchFeatures": [{"feature": "fake.flag",
                                                                "matchExpressions": {"nope": {"op": "Exists"}}}]},
        {"name": "absent var", "matchFeatures": [{"feature": "rule.matched",
                                                  "matchExpressions": {"x": {"op": "DoesNotExist"}}}]}]}]}
    res = evaluate_spec(spec, FAKE)[0]
    assert [r.ok for r in res.rules] == [False, True]


@pytest.mark.parametrize("template,expected", [
    ('k={{ "a}}b" }}', {"k": "a}}b"}),                       # a string may hold the delimiter
    ('k={{ "\\x41\\u00e9\\101" }}', {"k": "A\u00e9A"}),      # Go's escapes
    ("k={{ `r}}a\\w` }}", {"k": "r}}a\\w"}),
])
def test_string_constants_as_go_reads_them(template, expected):
    assert expand_map(parse(template), {}) == expected


@pytest.mark.parametrize("template", ['k={{ "\\q" }}', 'k={{ "\\x4" }}', 'k={{ "open }}'])
def test_malformed_string_constants_are_errors(template, recwarn):
    with pytest.raises(TemplateError):
        parse(template)
    assert not recwarn.list                 # nothing printed by Python's own string parser
