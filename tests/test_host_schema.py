"""Host profiles are validated against schemas/host.schema.json before use: the hot path's
interpreter (compat.schema.first_problem) and jsonschema agree on generated profiles."""
import json
import os
import subprocess
import sys

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import compat
from compat import limits
from compat.errors import BadInput
from compat.schema import KEYWORDS, first_problem, load_schema
from conftest import HOSTS, REPO, detect_json

SCHEMA = load_schema("host")
VALIDATOR = jsonschema.Draft202012Validator(SCHEMA)

# strings that sit on either side of the schema's patterns
SAMPLES = ["9.0", "12.4", "9", "9.", ".9", "abc", "gfx90a", "gfx", "gfxZZ", "GFX90A", "2.35", "2.35.1",
           "x2.35", "", " ", "nvidia", "amd", "intel", "infiniband", "roce", "openmpi", "mpich", "pmix",
           "pmi1", "compat.host/v1", "\x1b[31m", "\u2028", "10.0\n"]


def _resolve(schema):
    while isinstance(schema, dict) and "$ref" in schema:
        node = SCHEMA
        for part in schema["$ref"][2:].split("/"):
            node = node[part]
        schema = node
    return schema


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-3, 100), st.floats(allow_nan=False, allow_infinity=False),
                 st.sampled_from(SAMPLES), st.lists(st.integers(), max_size=2),
                 st.dictionaries(st.sampled_from(["vendor", "x", "type"]), st.integers(), max_size=2))


def _choose(good, bad, odds=30):
    """``good`` mostly, ``bad`` once in ``odds`` draws (so a whole profile is valid often)."""
    middle = odds // 2 + 1          # hypothesis favours the ends of a range: pick a middle value
    return st.integers(0, odds - 1).flatmap(lambda r: bad if r == middle else good)


def _strings(schema):
    n = schema.get("maxLength", 40)
    if "pattern" in schema:
        good = st.from_regex(schema["pattern"], fullmatch=schema["pattern"].endswith("$"), alphabet="0123456789.-_abcdefgvxz A")
        good = good.filter(lambda v: len(v) <= n)
    else:
        good = st.one_of(st.text(max_size=6), st.sampled_from(SAMPLES))
    near = st.sampled_from([n, n + 1]).map(lambda k: "7." + "1" * (k - 2))
    return _choose(good, st.one_of(near, st.sampled_from(SAMPLES), st.text(max_size=4)), 8)


def _integers(schema):
    lo, hi = schema.get("minimum", -5), schema.get("maximum", 100)
    good = st.one_of(st.integers(lo, min(hi, lo + 70)), st.just(hi), st.just(float(lo)))
    return _choose(good, st.sampled_from([lo - 1, hi + 1, 1.5, True]), 8)


def _arrays(schema, depth):
    items = values(schema.get("items", {}), depth + 1)
    plain = st.lists(items, max_size=3)
    if "maxItems" not in schema:
        return plain
    n = schema["maxItems"]
    return _choose(plain, st.tuples(items, st.sampled_from([n, n + 1])).map(lambda t: [t[0]] * t[1]), 10)


def _objects(schema, depth):
    props = schema.get("properties", {})
    required = set(schema.get("required", ()))
    extra = schema.get("additionalProperties", True)

    @st.composite
    def build(draw):
        out = {}
        for key, sub in props.items():
            if key in required or draw(st.booleans()):
                if key in required and draw(st.integers(0, 60)) == 31:
                    continue                                   # now and then a required key is missing
                out[key] = draw(values(sub, depth + 1))
        if isinstance(extra, dict):
            for i in range(draw(st.integers(0, 2))):
                key = draw(_choose(st.sampled_from(["a", "os.arch", "cpu", "x" * 128]), st.just("k" * 129)))
                out[key] = draw(values(extra, depth + 1))
        elif draw(st.integers(0, 60)) == 31:
            out["unexpected"] = 1
        return out
    return build()


def values(schema, depth=0):
    """Mostly-valid instances of ``schema``, with junk, near-bound lengths and counts."""
    schema = _resolve(schema)
    if schema is True or schema == {}:
        return JUNK
    if "const" in schema:
        good = st.just(schema["const"])
    elif "enum" in schema:
        good = st.sampled_from(schema["enum"])
    else:
        types = schema.get("type", [])
        types = types if isinstance(types, list) else [types]
        makers = {"string": lambda: _strings(schema), "integer": lambda: _integers(schema),
                  "null": st.none, "boolean": st.booleans, "array": lambda: _arrays(schema, depth),
                  "object": lambda: _objects(schema, depth)}
        good = st.one_of([makers[t]() for t in types])
    return _choose(good, JUNK, 80)


def _jsonschema_paths(instance):
    return [list(e.absolute_path) for e in VALIDATOR.iter_errors(instance)]


@settings(max_examples=200, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(values(SCHEMA))
def test_structural_check_agrees_with_jsonschema(profile):
    mine = first_problem(profile, "host")
    theirs = _jsonschema_paths(profile)
    assert (mine is None) == (not theirs), (mine, theirs[:3])
    if mine is not None:
        assert mine[0] in theirs, (mine, theirs[:5])


def test_generated_profiles_are_both_valid_and_invalid():
    """The agreement test is only worth something if both verdicts occur."""
    seen = set()

    @settings(max_examples=30, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(values(SCHEMA))
    def collect(profile):
        seen.add(first_problem(profile, "host") is None)
    collect()
    assert seen == {True, False}


@pytest.mark.parametrize("name", sorted(d for d in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, d))))
def test_structural_check_accepts_every_detected_profile(name):
    assert first_problem(detect_json("--sysroot", os.path.join(HOSTS, name)), "host") is None


def test_structural_check_knows_every_keyword_of_the_schema():
    seen = set()

    def walk(node):
        if isinstance(node, dict):
            seen.update(node)
            for key, value in node.items():
                if key in ("properties", "$defs"):
                    for sub in value.values():
                        walk(sub)
                elif key not in ("enum", "const", "required"):
                    walk(value)
        elif isinstance(node, list):
            for x in node:
                walk(x)
    walk(SCHEMA)
    assert seen - {"schema", "os", "cpu"} <= KEYWORDS | set(SCHEMA["properties"]) | set(SCHEMA["$defs"]) | {
        p for d in SCHEMA["$defs"].values() for p in d.get("properties", {})} | {
        p for d in SCHEMA["properties"].values() if isinstance(d, dict) for p in d.get("properties", {})}


def test_schema_bounds_are_the_limits():
    assert SCHEMA["properties"]["gpus"]["maxItems"] == limits.HOST_GPUS
    assert SCHEMA["$defs"]["gpu"]["properties"]["index"]["maximum"] == limits.HOST_GPUS - 1


def _profile(**changes):
    prof = {"schema": "compat.host/v1", "os": {"arch": "amd64"}, "cpu": {}, "gpus": [], "fabrics": [],
            "mpi": [], "sources": {}}
    prof.update(changes)
    return prof


@pytest.mark.parametrize("changes,path", [
    ({"schema": "compat.host/v2"}, "$.schema"),
    ({"gpus": [{"vendor": "nvidia", "cc": "9"}]}, "$.gpus[0].cc"),
    ({"gpus": [{"vendor": "nvidia"}] * (limits.HOST_GPUS + 1)}, "$.gpus"),
    ({"pmi": 7}, "$.pmi"),
    ({"fabrics": [{}]}, "$.fabrics[0]"),
    ({"cpu": {"model": "x" * 5000}}, "$.cpu.model"),
    ({"cpu": {"x86_64_level": True}}, "$.cpu.x86_64_level"),
    ({"sources": {"a": 1}}, "$.sources.a"),
])
def test_load_host_names_the_first_failing_path(tmp_path, changes, path):
    f = tmp_path / "node.json"
    f.write_text(json.dumps(_profile(**changes)))
    with pytest.raises(BadInput) as info:
        compat.load_host(str(f))
    assert str(info.value).startswith(f"host profile {f}: {path}: ")
    assert "--host" not in str(info.value)


def test_load_host_accepts_a_path_object(tmp_path):
    import pathlib
    f = tmp_path / "node.json"
    f.write_text(json.dumps(_profile()))
    assert compat.load_host(pathlib.Path(f)).os.arch == "amd64"


@pytest.mark.parametrize("bad", [3, None, ["node.json"], {"schema": "compat.host/v1"}])
def test_load_host_says_what_it_wants(bad):
    with pytest.raises(TypeError, match=r"str or os\.PathLike"):
        compat.load_host(bad)


def test_select_accepts_a_profile_path(tmp_path):
    """compat.select(ref, host="node.json"): the path is loaded (here it fails validation,
    which proves it was read as a profile, not used as a Host)."""
    f = tmp_path / "node.json"
    f.write_text(json.dumps(_profile(pmi=7)))
    with pytest.raises(BadInput, match=r"\$\.pmi"):
        compat.select("oci:" + os.path.join(REPO, "fixtures", "demo"), host=str(f))


def test_select_says_what_host_it_wants():
    with pytest.raises(TypeError, match=r"compat\.Host, a path \(str or os\.PathLike\)"):
        compat.select("oci:" + os.path.join(REPO, "fixtures", "demo"), host=42)


def test_loading_a_profile_does_not_import_jsonschema(tmp_path):
    f = tmp_path / "node.json"
    f.write_text(json.dumps(_profile()))
    code = ("import sys, compat; compat.load_host(sys.argv[1]); "
            "print('jsonschema' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(f)], capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": REPO}, check=True).stdout
    assert out.strip() == "False"


def test_list_bounds_in_the_profile_are_the_schema_bounds():
    from compat.host.profile import _MAX_ITEMS
    for name, n in _MAX_ITEMS.items():
        assert SCHEMA["properties"][name]["maxItems"] == n, name


def test_detected_host_is_clipped_to_the_schema(tmp_path):
    from compat.host.profile import GPU, Host, printable_host
    many = Host(gpus=tuple(GPU("intel", index=i % 64, model="\x1b[2J" + "m" * 2000) for i in range(500)),
                sources={"x": "y\n" * 5000})
    clipped = printable_host(many).to_dict()
    assert len(clipped["gpus"]) == limits.HOST_GPUS and "gpus.bound" in clipped["sources"]
    assert first_problem({**clipped, "fabrics": [], "mpi": []}, "host") is None
