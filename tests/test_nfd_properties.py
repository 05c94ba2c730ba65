"""Property tests: random rules, expressions, templates and patterns never raise anything but
the module's own error (RuleError / TemplateError / RegexpError), with a fixed budget."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from compat.nfd.expression import OPS
from compat.nfd.goregexp import RegexpError, compile as go_compile
from compat.nfd.rules import Features, RuleError, evaluate_spec
from compat.nfd.template import GoMap, TemplateError, expand_map, parse

BUDGET = settings(max_examples=150, deadline=None, derandomize=True,
                  suppress_health_check=[HealthCheck.too_slow])

FEATURES = Features(
    flags={"cpu.cpuid": {"AVX2", "X86_64_V3"}, "kernel.loadedmodule": {"mlx5_ib"}},
    attributes={"kernel.version": {"full": "6.8.0-45-generic", "major": "6"}, "cpu.model": {"vendor_id": "AMD"}},
    instances={"pci.device": [{"vendor": "15b3", "class": "0207"}, {"vendor": "10de", "class": "0302"}]})

text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12) | st.sampled_from(
    ["1", "2.0", "-3", "v1.2.3", "6.8", "^AVX", "(", "[[:upper:]]", "\\C", "(?=x)", "true", ""])
scalar = text | st.integers(-5, 5) | st.booleans() | st.none() | st.floats(allow_nan=False, width=16)
value = st.lists(text, max_size=3) | scalar | st.lists(scalar, max_size=3)
expression = st.fixed_dictionaries({"op": st.sampled_from(OPS + ("Gte", "")) | scalar},
                                   optional={"value": value, "type": st.sampled_from(["", "version", "x"]) | scalar})
any_expression = expression | scalar | st.lists(scalar, max_size=2)
feature = st.sampled_from(["cpu.cpuid", "kernel.version", "pci.device", "cpu.model", "rule.matched", "nope.x",
                           "CPU.CPUID", "nodot"])
term = st.fixed_dictionaries({"feature": feature | scalar},
                             optional={"matchExpressions": st.dictionaries(text, any_expression, max_size=3) | scalar,
                                       "matchName": any_expression})
terms = st.lists(term | scalar, max_size=3) | scalar
template = st.sampled_from(["", "k=v", "{{ range .cpu.cpuid }}{{ .Name }}=1\n{{ end }}", "{{", "x",
                            "{{ .nope }}", "k={{ len .pci.device }}", "{{ if }}"]) | text
rule = st.fixed_dictionaries({}, optional={
    "name": text | scalar, "matchFeatures": terms, "vars": st.dictionaries(text, scalar, max_size=2) | scalar,
    "varsTemplate": template | scalar,
    "matchAny": st.lists(st.fixed_dictionaries({"matchFeatures": terms}) | scalar, max_size=2) | scalar})
spec = st.fixed_dictionaries({"version": st.just("v1alpha1") | scalar, "compatibilities": st.lists(
    st.fixed_dictionaries({"rules": st.lists(rule | scalar, max_size=3) | scalar},
                          optional={"weight": scalar, "tag": scalar}) | scalar, max_size=3) | scalar})


@BUDGET
@given(spec)
def test_random_specs_raise_only_rule_errors(doc):
    try:
        results = evaluate_spec(doc, FEATURES)
    except RuleError:
        return
    assert all(isinstance(r.ok, bool) for r in results)


@BUDGET
@given(st.text(max_size=60) | st.lists(st.sampled_from(
    ["{{", "}}", "{{-", " -}}", "range", "if", "else", "end", "with", " . ", ".cpu.cpuid", ".Name", "|", "(", ")",
     "len", "index", "first", '"x"', "1", "$x", ":=", "/*", "*/", "=", "\n", "eq", "and", "not", "substr 0 2"]),
    max_size=25).map("".join))
def test_random_templates_raise_only_template_errors(src):
    data = GoMap({"cpu": GoMap({"cpuid": [{"Name": "AVX2"}]}, zero=[])}, zero=GoMap(zero=[]))
    try:
        expand_map(parse(src), data)
    except TemplateError:
        pass


@BUDGET
@given(st.text(max_size=20) | st.lists(st.sampled_from(
    ["(", ")", "?", "=", "!", "<", ">", "P", "*", "+", "{", "}", "1000", ",", "\\", "C", "Q", "E", "z", "Z",
     "p", "L", "[", "]", ":", "^", "$", "|", ".", "a", "i", "-", "\udc80"]), max_size=20).map("".join))
def test_random_patterns_raise_only_regexp_errors(pattern):
    try:
        go_compile(pattern).search("abc")
    except RegexpError:
        pass


json_value = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=6),
                          lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=6), kids,
                                                                                     max_size=3), max_leaves=12)
element_sets = st.dictionaries(st.sampled_from(["cpu.cpuid", "cpu.model", "kernel.version", "local.feature",
                                                "pci.device", "kernel.loadedmodule"]) | st.text(max_size=5),
                               st.fixed_dictionaries({"elements": json_value | st.dictionaries(
                                   st.text(max_size=5), json_value, max_size=3) | st.lists(
                                   st.fixed_dictionaries({"attributes": json_value | st.dictionaries(
                                       st.sampled_from(["vendor", "class", "x"]), json_value, max_size=3)}),
                                   max_size=3)}) | json_value, max_size=3)
node_feature = st.fixed_dictionaries({}, optional={"kind": st.just("NodeFeature") | json_value,
                                                   "flags": element_sets, "attributes": element_sets,
                                                   "instances": element_sets, "spec": json_value})


@BUDGET
@given(node_feature)
def test_random_nodefeature_documents_raise_only_bad_input(doc):
    from compat.errors import BadInput
    from compat.nfd.nodefeature import from_export, to_host
    try:
        to_host(from_export(doc), "random")
    except BadInput:
        pass


label_value = st.text(max_size=12) | st.sampled_from(["[4.19, 5.16)", "(,5]", "AVX512F,", "GenuineIntel", "15B3.020D",
                                                      "Infinity", "1e999"]) | st.integers() | st.floats() | \
    st.none() | st.booleans() | st.lists(st.integers(), max_size=2)
compat_set = st.dictionaries(st.sampled_from(["oci.cpu.vendor", "oci.cpu.features", "oci.kernel.versions",
                                              "oci.os.glibc", "oci.os.openmpi", "oci.os.bogus", "oci.pci.devices",
                                              "compatibility-score", "description", "x"]), label_value, max_size=4)


@BUDGET
@given(st.lists(compat_set | label_value, max_size=3) | label_value)
def test_random_platform_compatibilities_give_a_verdict(sets):
    from compat.host.profile import CPU, OS, Host
    from compat.match.compatibilities import check
    host = Host(os=OS(arch="amd64", kernel="5.14.0-427.el9.x86_64", glibc="2.34"),
                cpu=CPU(vendor="GenuineIntel", features=("avx2", "avx512f")), gpus=(), fabrics=(), mpi=())
    result = check({"compatibilities": sets}, host, FEATURES)
    assert isinstance(result.ok, bool) and isinstance(result.reason, str)


@pytest.mark.parametrize("score", [float("inf"), float("nan"), "9" * 5000, [1], None])
def test_a_compatibility_score_that_is_no_integer_fails_its_candidate(score):
    from compat.host.profile import CPU, OS, Host
    from compat.match.compatibilities import check
    host = Host(os=OS(arch="amd64"), cpu=CPU(vendor="GenuineIntel"), gpus=(), fabrics=(), mpi=())
    result = check({"compatibilities": [{"oci.cpu.vendor": "GenuineIntel", "compatibility-score": score}]}, host)
    assert not result.ok and "is not an integer" in result.reason
