"""Runtimes in a saved profile (--host, a plan inventory): only runtimes this compat knows,
each once, the first listed winning; what was left out noted in sources["runtimes.ignored"]
(spec/host.md, "Saved profiles"). A profile written by a newer compat may name runtimes this
one does not know: kept out and noted, not refused. The profile is a real detection of a
fixtures/hosts capture with its runtimes edited."""
import json
import os

import pytest

from conftest import HOSTS, run_compat
from compat.oci import media

APPTAINER = os.path.join(HOSTS, "apptainer-ubuntu2404")


@pytest.fixture(scope="module")
def detected():
    import compat.host
    return compat.host.detect(sysroot=APPTAINER).to_dict()


def _profile(tmp_path, detected, runtimes, name="node.json"):
    path = tmp_path / name
    path.write_text(json.dumps(dict(detected, runtimes=runtimes)))
    return str(path)


def test_unknown_and_repeated_runtimes_are_left_out_with_a_note(tmp_path, detected):
    import compat
    runtimes = [{"name": "flatpak", "version": "1.14.6"}, {"name": "podman", "version": "4.9.3"},
                {"name": "apptainer", "version": "1.3.4"}, {"name": "podman", "version": "5.0"},
                {"name": "singularity-ce", "version": "4.1.0"}]
    host = compat.load_host(_profile(tmp_path, detected, runtimes))
    assert [(r.name, r.version) for r in host.runtimes] == \
        [("podman", "4.9.3"), ("apptainer", "1.3.4"), ("singularity", "4.1.0")]
    note = host.sources["runtimes.ignored"]
    assert "flatpak" in note and "podman" in note and "singularity-ce" not in note


def test_a_clean_profile_loads_unchanged(tmp_path, detected):
    import compat
    import compat.host
    host = compat.load_host(_profile(tmp_path, detected, detected["runtimes"]))
    assert host == compat.host.Host.from_dict(detected)
    assert "runtimes.ignored" not in host.sources


def test_cli_host_default_runtime_and_export_agree_with_assume(tmp_path, detected):
    """The first runtime compat knows is the default; the export names only known runtimes,
    each once — what --assume runtime= would have given."""
    prof = _profile(tmp_path, detected, [{"name": "flatpak"}, {"name": "podman", "version": "4.9.3"},
                                         {"name": "podman", "version": "5.0"}])
    feats = run_compat("detect", "--host", prof, "--format", "nfd-features", check=0).stdout
    lines = [ln.split("/", 1)[-1] for ln in feats.splitlines() if "runtime." in ln]
    assert "runtime.podman=4.9.3" in lines and {ln.split("=")[0].split(".")[1] for ln in lines} == {"podman"}, feats
    assert not any(ln.startswith("runtime.podman=5.0") for ln in lines)
    assert "flatpak" not in run_compat("detect", "--host", prof, "--json", check=0).stdout.split('"sources"')[0]
    # the default runtime judging a runtime key is podman (not flatpak)
    index = {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 2,
         "platform": {"os": "linux", "architecture": "amd64"}, "annotations": {"org.hpc-compat.runtime": "podman>=4"}}]}
    import compat
    assert compat.rank(index, compat.load_host(prof)).best.digest == "sha256:" + "1" * 64
    for bad in ("flatpak", "podman,podman"):
        assert run_compat("detect", "--host", prof, "--assume", f"runtime={bad}").returncode == 2


def test_plan_inventory_reads_the_same_rule(tmp_path, detected):
    import compat
    d = tmp_path / "nodes"
    d.mkdir()
    _profile(d, detected, [{"name": "flatpak"}, {"name": "podman"}], "a1.json")
    _profile(d, detected, [{"name": "podman"}], "a2.json")
    p = compat.plan({"schemaVersion": 2, "manifests": []}, [str(d)])
    assert len(p.classes) == 1       # flatpak left out: the same runtimes as a2 (sources differ only)
