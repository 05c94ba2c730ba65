"""Matching reads archspec's targets from a table (compat/vocab/targets.py) instead of
importing archspec (issue 13). The table must answer as archspec does for every target and
every pair of targets, be rebuilt when archspec's version or data file changes, treat a
damaged cache file as a miss, and spare a warm process the archspec import."""
import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from archspec.cpu import TARGETS
from archspec.cpu.detect import partial_uarch
from archspec.cpu.schema import TARGETS_JSON
from hypothesis import given, settings, strategies as st

from compat.vocab import targets as T

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh cache directory and no table loaded in this process (before and after)."""
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("COMPAT_NO_CACHE", raising=False)
    T.forget()
    yield tmp_path
    T.forget()


def test_every_target_reads_as_archspec_says(cache):
    table = T.targets()
    assert set(table.by_name) == set(TARGETS)
    for name, t in TARGETS.items():
        mine = table.get(name)
        assert (mine.vendor, mine.family, mine.features) == (t.vendor, t.family.name, frozenset(t.features))
        assert mine.ancestors == tuple(a.name for a in t.ancestors) and mine.depth == len(t.ancestors) + 1


def test_every_pair_runs_on_as_archspec_orders_them(cache):
    table = T.targets()
    for a, ta in TARGETS.items():
        for b, tb in TARGETS.items():
            assert table.runs_on(table.get(a), table.get(b)) == (ta <= tb), (a, b)


ALL_FEATURES = sorted({f for t in TARGETS.values() for f in t.features} | set(TARGETS_JSON["feature_aliases"]))


def test_every_feature_and_alias_of_every_target_reads_as_archspec(cache):
    """A host's flags are archspec's partial microarchitecture: the table's answer to ``f in
    partial`` equals archspec's for each target's flags and every feature name and alias."""
    table = T.targets()
    for t in TARGETS.values():
        partial = partial_uarch(vendor=t.vendor, features=set(t.features))
        for f in ALL_FEATURES:
            assert table.has_feature(set(t.features), "", f) == (f in partial), (t.name, f)
        for f in ("neon", "vsx", "altivec", "fma"):    # the family aliases, for a whole target
            assert table.has_feature(set(t.features), t.family.name, f) == (f in t), (t.name, f)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.sets(st.sampled_from(ALL_FEATURES), max_size=12), st.sampled_from(ALL_FEATURES))
def test_any_set_of_flags_reads_as_archspec(flags, feature):
    table = T.targets()
    assert table.has_feature(flags, "", feature) == (feature in partial_uarch(vendor="generic", features=flags))


def test_the_table_is_cached_and_reused(cache, monkeypatch):
    first = T.targets()
    assert json.loads(open(T.cache_file(T.identity())).read())["identity"] == T.identity() == first.identity
    T.forget()
    monkeypatch.setattr(T, "build", lambda ident: pytest.fail("rebuilt although archspec did not change"))
    assert T.targets() == first


def test_a_new_archspec_version_rebuilds_the_table(cache, monkeypatch):
    T.targets()
    T.forget()
    built = []
    real_build = T.build
    monkeypatch.setattr(T, "identity", lambda: "archspec 9.9.9|format 1|elsewhere:1:2")
    monkeypatch.setattr(T, "build", lambda ident: built.append(ident) or real_build(ident))
    table = T.targets()
    assert built == ["archspec 9.9.9|format 1|elsewhere:1:2"] and table.identity == built[0]
    assert json.loads(open(T.cache_file(built[0])).read())["identity"] == built[0]
    assert len(list(cache.iterdir())) == 2                   # the other archspec's table stays


def test_the_identity_follows_archspec_version_and_data_files(tmp_path, monkeypatch):
    base = T.identity()
    assert "archspec 0." in base or "archspec 1." in base
    data = os.path.join(os.path.dirname(os.path.dirname(TARGETS_JSON.args[0])), "cpu", "microarchitectures.json")
    copy = tmp_path / "cpu"
    copy.mkdir()
    shutil.copy(data, copy / "microarchitectures.json")
    monkeypatch.setenv("ARCHSPEC_CPU_DIR", str(copy))
    moved = T.identity()
    assert moved != base and str(copy) in moved
    with open(copy / "microarchitectures.json", "a") as fh:
        fh.write("\n")
    assert T.identity() != moved                       # the same path, edited: a new identity
    monkeypatch.setenv("ARCHSPEC_EXTENSION_CPU_DIR", str(tmp_path / "ext"))
    assert T.identity() != moved


def test_an_edited_data_file_reaches_matching_in_the_next_process(tmp_path):
    """End to end: archspec reading another microarchitectures.json (ARCHSPEC_CPU_DIR) without
    zen4 makes ``cpu.target=zen4`` unknown to matching, and the cache file follows."""
    data = json.loads(open(TARGETS_JSON.args[0]).read())
    uarchs = data["microarchitectures"]
    gone = {"zen4"}
    while True:                       # zen4 and every target derived from it
        more = {n for n, t in uarchs.items() if gone & set(t.get("from", []))} - gone
        if not more:
            break
        gone |= more
    for name in gone:
        del uarchs[name]
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "microarchitectures.json").write_text(json.dumps(data))
    code = ("from compat.vocab.targets import targets; import sys; "
            "print(targets().get('zen4') is None, targets().get('zen3') is not None, 'archspec' in sys.modules)")
    env = dict(os.environ, COMPAT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=REPO)
    env.pop("COMPAT_NO_CACHE", None)
    run = lambda extra: subprocess.run([sys.executable, "-c", code], env=dict(env, **extra), capture_output=True,
                                       text=True, check=True).stdout.split()
    assert run({}) == ["False", "True", "True"]                                   # built: archspec imported
    assert run({}) == ["False", "True", "False"]                                  # cached: no archspec
    assert run({"ARCHSPEC_CPU_DIR": str(tmp_path / "cpu")}) == ["True", "True", "True"]    # rebuilt
    assert run({"ARCHSPEC_CPU_DIR": str(tmp_path / "cpu")}) == ["True", "True", "False"]


CORRUPT = {
    "not json": b"{not json",
    "not an object": b"[1, 2]",
    "empty": b"",
    "wrong format": lambda doc: dict(doc, format=0),
    "no targets": lambda doc: dict(doc, targets={}),
    "a target not an object": lambda doc: dict(doc, targets=dict(doc["targets"], zen4=7)),
    "unknown ancestor": lambda doc: dict(doc, targets=dict(doc["targets"], zen4=dict(doc["targets"]["zen4"],
                                                                                  ancestors=["nowhere"]))),
    "unknown family": lambda doc: dict(doc, targets=dict(doc["targets"], zen4=dict(doc["targets"]["zen4"],
                                                                                family="vax"))),
    "features not strings": lambda doc: dict(doc, targets=dict(doc["targets"], zen4=dict(doc["targets"]["zen4"],
                                                                                      features=[1]))),
    "aliases not lists": lambda doc: dict(doc, aliases={"sse3": {"any_of": "ssse3"}}),
    "too large": b"{" + b" " * (2 << 20) + b"}",
    "deep": b"[" * 100_000,
}


@pytest.mark.parametrize("damage", sorted(CORRUPT))
def test_a_damaged_cache_file_is_a_miss(cache, damage):
    good = T.targets()
    path = pathlib.Path(T.cache_file(T.identity()))
    how = CORRUPT[damage]
    path.write_bytes(how if isinstance(how, bytes) else json.dumps(how(json.loads(path.read_text()))).encode())
    T.forget()
    again = T.targets()
    assert again == good
    assert T.read(str(path), T.identity()) == good                # and the file was written again


def test_matching_a_cpu_requirement_imports_no_archspec_when_warm(tmp_path):
    """A warm process ranks ``cpu.target``, ``cpu.features`` and platform variants without
    importing archspec (the host comes from a profile, as ``select --host`` reads it)."""
    from big_index import bench_host, big_index
    (tmp_path / "host.json").write_text(json.dumps(bench_host().to_dict()))
    (tmp_path / "index.json").write_text(json.dumps(big_index(600)))
    index, host = str(tmp_path / "index.json"), str(tmp_path / "host.json")
    code = ("import compat, json, sys; from compat.match.rank import rank; "
            f"r = rank(json.load(open({index!r})), compat.load_host({host!r})); "
            "print(len(r.compatible), sorted(m for m in sys.modules if m.startswith('archspec')))")
    env = dict(os.environ, COMPAT_CACHE_DIR=str(tmp_path / "cache"), PYTHONPATH=REPO)
    env.pop("COMPAT_NO_CACHE", None)
    first, second = (subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                    check=True).stdout for _ in range(2))
    assert "archspec.cpu" in first                 # the first process built the table
    assert second.split(" ", 1) == [first.split(" ", 1)[0], "[]\n"]
