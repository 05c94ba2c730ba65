"""The probe cache (probes.json) is compat's own file but lives in the user's home: an entry of
the wrong type, a file that is not JSON, a FIFO or a huge file is a cache miss, and the
entry is rewritten; no command breaks until the file is deleted."""
import json
import os

import pytest

from compat.host.cache import ProbeCache, is_level, is_library_answers, is_text
from helpers import run_hostile


def _detect(cache_dir):
    return run_hostile("detect", "--json", env={"COMPAT_CACHE_DIR": str(cache_dir)})


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A cache directory after one live detect, and what that detect printed."""
    d = tmp_path_factory.mktemp("cache")
    proc = _detect(d)
    assert proc.returncode == 0
    entries = json.loads((d / "probes.json").read_text())
    assert entries, "the live detect cached nothing: the test would prove nothing"
    return d, entries, json.loads(proc.stdout)


@pytest.mark.parametrize("junk", ["x", 5, 2.5, True, {"soname": 1}, [1, "a"], [{"text": 3}], None])
def test_wrong_typed_cache_entry_is_a_miss_and_rewritten(tmp_path, filled, junk):
    _, entries, expected = filled
    poisoned = {k: v if _check(k)(junk) else junk for k, v in entries.items()}   # wrong types only
    assert poisoned != entries
    (tmp_path / "probes.json").write_text(json.dumps(poisoned))
    proc = _detect(tmp_path)
    assert proc.returncode == 0
    got = json.loads(proc.stdout)
    assert (got["cpu"], got["mpi"], got["runtimes"]) == (expected["cpu"], expected["mpi"], expected["runtimes"])
    rewritten = json.loads((tmp_path / "probes.json").read_text())
    for key, value in rewritten.items():
        assert _check(key)(value), (key, value)


def _check(key):
    return {"ldso-level": is_level, "mpi-libs": is_library_answers}.get(key.split("|")[1], is_text)


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b"\x00\xff not json"),
    lambda p: p.write_text("[" * 100_000),
    lambda p: p.write_text('"a string"'),
    os.mkfifo,
    lambda p: p.mkdir(),
])
def test_unreadable_cache_file_is_an_empty_cache(tmp_path, make):
    make(tmp_path / "probes.json")
    assert _detect(tmp_path).returncode == 0


def test_huge_cache_file_is_not_read(tmp_path):
    with open(tmp_path / "probes.json", "wb") as fh:
        fh.truncate(64 << 20)                     # sparse
    cache = ProbeCache(enabled=True)
    cache._path = str(tmp_path / "probes.json")
    assert cache._load() == {}


def test_cache_answers_and_recomputes(tmp_path):
    cache = ProbeCache(enabled=True)
    cache._path = str(tmp_path / "probes.json")
    calls = []
    assert cache.get("p", [], lambda: calls.append(1) or "out", is_text) == "out"
    cache.save()
    again = ProbeCache(enabled=True)
    again._path = cache._path
    assert again.get("p", [], lambda: calls.append(1) or "new", is_text) == "out"
    assert again.get("p", [], lambda: calls.append(1) or 3, lambda v: isinstance(v, int)) == 3
    assert len(calls) == 2


def test_changed_probing_code_recomputes(tmp_path, filled):
    """An upgrade of compat (here: an edit to a probe module of a copy) keys every probe anew:
    an answer an older compat cached (ch-run's "$USER not set" before the probe set $USER) is
    not served; with the code unchanged, the same cached answer is served."""
    import shutil
    from conftest import REPO
    copy = tmp_path / "src"
    shutil.copytree(os.path.join(REPO, "compat"), copy / "compat",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    env = {"COMPAT_CACHE_DIR": str(cache), "PYTHONPATH": str(copy)}
    assert run_hostile("detect", "--json", env=env, cwd=copy).returncode == 0
    entries = json.loads((cache / "probes.json").read_text())
    texts = [k for k, v in entries.items() if isinstance(v, str)]
    assert texts, "no text probe was cached: the test would prove nothing"
    stale = "ERROR: $USER not set"

    def poison_and_detect():
        (cache / "probes.json").write_text(json.dumps({k: stale if k in texts else v for k, v in entries.items()}))
        for f in cache.glob("profile-*.json"):
            f.unlink()                                  # the whole-profile cache would answer first
        assert run_hostile("detect", "--json", env=env, cwd=copy).returncode == 0
        return json.loads((cache / "probes.json").read_text())

    served = poison_and_detect()
    assert [served[k] for k in texts] == [stale] * len(texts)           # same code: served
    probe = copy / "compat" / "host" / "runtime.py"
    probe.write_text(probe.read_text() + "\n# a newer probe\n")
    recomputed = poison_and_detect()
    assert stale not in recomputed.values()
    assert not set(recomputed) & set(entries)                           # the old keys are dropped
    assert sorted(k.split("|", 1)[1] for k in recomputed) == sorted(k.split("|", 1)[1] for k in entries)
