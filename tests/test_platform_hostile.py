"""Hostile index content through the real CLI: one malformed descriptor is excluded with its
reason and the rest are still ranked; a malformed index itself is bad input (exit 2, one
line); nested indexes are walked once each, within limits.INDEX_DEPTH and limits.CANDIDATES."""
import hashlib
import json
import os

import pytest

from compat import limits
from compat.host.assume import cpu_from_target
from compat.host.profile import OS, Host
from compat.match.rank import rank
from conftest import HOSTS
from helpers import run_hostile

INDEX = "application/vnd.oci.image.index.v1+json"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
ZEN3 = os.path.join(HOSTS, "slingshot-zen3")          # linux/amd64/v3, zen3 (read, nothing executed)


class Layout:
    """An OCI image layout in tmp_path: blobs by digest, index.json naming tagged indexes."""

    def __init__(self, root):
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True)
        (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
        self.tags = []

    def blob(self, data) -> str:
        raw = data if isinstance(data, bytes) else json.dumps(data).encode()
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        (self.root / "blobs" / "sha256" / digest[7:]).write_bytes(raw)
        return digest

    def tag(self, name, data, media_type=INDEX) -> str:
        digest = self.blob(data)
        self.tags.append({"mediaType": media_type, "digest": digest, "size": 1,
                          "annotations": {"org.opencontainers.image.ref.name": name}})
        (self.root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": self.tags}))
        return f"oci:{self.root}:{name}"


def image(n, **platform) -> dict:
    return {"mediaType": MANIFEST, "digest": "sha256:" + hashlib.sha256(str(n).encode()).hexdigest(),
            "size": 100, "platform": platform or {"os": "linux", "architecture": "amd64"}}


GOOD = image("good", os="linux", architecture="amd64", variant="v2")


def select(ref, *more):
    return run_hostile("select", ref, "--sysroot", ZEN3, "--no-referrers", *more)


# (name, hostile descriptor, reason fragment)
MALFORMED = [
    ("amd64 variant '8'", image(1, os="linux", architecture="amd64", variant="8"), "not an amd64 level"),
    ("amd64 variant 'vx'", image(2, os="linux", architecture="amd64", variant="vx"), "not an amd64 level"),
    ("integer variant", image(3, os="linux", architecture="amd64", variant=8), "platform.variant must be a string"),
    ("integer os", image(4, os=7, architecture="amd64"), "platform.os must be a string"),
    ("list architecture", image(5, os="linux", architecture=["amd64"]), "platform.architecture must be a string"),
    ("platform a string", dict(image(6), platform="linux/amd64"), "platform must be an object"),
    ("arm64 v8.10", image(7, os="linux", architecture="arm64", variant="v8.10"), "not an Arm level"),
    ("variant of 5000 digits", image(8, os="linux", architecture="amd64", variant="v" + "9" * 5000),
     "not an amd64 level"),
    ("os.features a string", image(9, os="linux", architecture="amd64", **{"os.features": "gpu"}),
     "os.features must be a list"),
    ("no digest", {k: v for k, v in image(10).items() if k != "digest"}, "missing or malformed digest"),
    ("digest a path", dict(image(11), digest="sha256:../../../etc/passwd"), "missing or malformed digest"),
    ("size a string", dict(image(12), size="12"), "missing or negative size"),
    ("size a bool", dict(image(13), size=True), "missing or negative size"),
    ("annotation value a number", dict(image(14), annotations={"org.hpc-compat.weight": 5}),
     "annotations must be an object of strings"),
    ("annotations a list", dict(image(15), annotations=["a", "b"]), "annotations must be an object"),
    ("descriptor a string", "sha256:abc", "is not an object"),
    ("descriptor null", None, "is not an object"),
    ("mediaType a number", dict(image(16), mediaType=3), "missing mediaType"),
    ("artifactType a list", dict(image(17), artifactType=["x"]), "artifactType must be a string"),
]


@pytest.mark.parametrize("name,bad,fragment", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_one_malformed_descriptor_is_excluded_and_the_rest_ranked(tmp_path, name, bad, fragment):
    ref = Layout(tmp_path).tag("t", {"schemaVersion": 2, "mediaType": INDEX, "manifests": [bad, GOOD]})
    proc = select(ref, "--format", "digest")
    assert proc.returncode == 0 and proc.stdout.strip() == GOOD["digest"], proc.stderr
    proc = select(ref, "--json")
    cands = json.loads(proc.stdout)["candidates"]
    bad_cand = next(c for c in cands if c["path"] == "manifests[0]")
    assert bad_cand["verdict"] == "error" and fragment in bad_cand["reason"], bad_cand


def test_a_huge_json_number_is_one_malformed_descriptor_not_a_broken_index(tmp_path):
    lay = Layout(tmp_path)
    text = json.dumps({"schemaVersion": 2, "mediaType": INDEX, "manifests": [image(1), GOOD]})
    text = text.replace('"size": 100', '"size": ' + "9" * 5000, 1)
    proc = select(lay.tag("t", text.encode()), "--json")
    cands = json.loads(proc.stdout)["candidates"]
    assert proc.returncode == 0 and cands[0]["digest"] == GOOD["digest"]
    assert "missing or negative size" in cands[1]["reason"]


def test_only_malformed_descriptors_is_exit_3_listing_each(tmp_path):
    ref = Layout(tmp_path).tag("t", {"schemaVersion": 2, "manifests": [m[1] for m in MALFORMED]})
    proc = select(ref)
    assert proc.returncode == 3
    assert len(proc.stderr.strip().splitlines()) == 1 + len(MALFORMED)


@pytest.mark.parametrize("doc", [
    b"not json", b"[]", {"schemaVersion": 2, "manifests": {"a": 1}}, {"schemaVersion": 2, "manifests": "x"},
    {"schemaVersion": "2", "manifests": []}, {"schemaVersion": 2, "mediaType": INDEX, "manifests": None},
    b'{"schemaVersion": 2, "manifests": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
], ids=["not-json", "a-list", "manifests-object", "manifests-string", "schema-string", "manifests-null", "deep"])
def test_a_malformed_index_is_bad_input(tmp_path, doc):
    proc = select(Layout(tmp_path).tag("t", doc if isinstance(doc, bytes) else doc))
    assert proc.returncode == 2 and proc.stderr.startswith("compat: ")


def test_an_index_descriptor_whose_blob_is_a_manifest(tmp_path):
    lay = Layout(tmp_path)
    fake = lay.blob({"schemaVersion": 2, "mediaType": MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "digest": image(0)["digest"], "size": 2},
        "layers": []})
    nested = {"mediaType": INDEX, "digest": fake, "size": 10}
    missing = {"mediaType": INDEX, "digest": image("absent")["digest"], "size": 10}
    ref = lay.tag("t", {"schemaVersion": 2, "manifests": [nested, missing, GOOD]})
    proc = select(ref, "--json")
    assert proc.returncode == 0, proc.stderr
    cands = {c["path"]: c for c in json.loads(proc.stdout)["candidates"]}
    assert cands["manifests[0]"]["verdict"] == "error" and "blob is not one" in cands["manifests[0]"]["reason"]
    assert cands["manifests[1]"]["verdict"] == "error" and "nested index" in cands["manifests[1]"]["reason"]
    assert cands["manifests[2]"]["verdict"] == "compatible"


def test_a_single_manifest_with_a_non_object_config_is_bad_input(tmp_path):
    lay = Layout(tmp_path)
    ref = lay.tag("m", {"schemaVersion": 2, "mediaType": MANIFEST, "config": ["x"], "layers": []}, MANIFEST)
    assert select(ref).returncode == 2


def test_a_config_with_a_hostile_platform_is_an_excluded_candidate(tmp_path):
    lay = Layout(tmp_path)
    cfg = lay.blob({"architecture": 5, "os": ["linux"]})
    ref = lay.tag("m", {"schemaVersion": 2, "mediaType": MANIFEST, "layers": [],
                        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                                   "size": 10}}, MANIFEST)
    proc = select(ref)
    assert proc.returncode == 3 and "platform.os must be a string" in proc.stderr


# -- nested fan-out ---------------------------------------------------------------------------------

def fan_out(lay: Layout, levels: int, width: int) -> str:
    """``levels`` nested levels, each index listing ``width`` references to the one below
    (width**levels candidates if every reference were walked)."""
    doc = {"schemaVersion": 2, "manifests": [image(f"leaf{i}", os="linux", architecture="amd64",
                                                   variant="v2") for i in range(width)]}
    for _ in range(levels - 1):
        digest = lay.blob(doc)
        doc = {"schemaVersion": 2, "manifests": [{"mediaType": INDEX, "digest": digest, "size": 1}] * width}
    return lay.tag("t", doc)


def test_nested_fan_out_is_walked_once_per_index(tmp_path):
    lay = Layout(tmp_path)
    ref = fan_out(lay, 4, 40)           # 40**4 = 2.56 M candidates if every reference were walked
    blobs = sum(p.stat().st_size for p in (tmp_path / "blobs" / "sha256").iterdir())
    assert blobs < 40_000
    proc = select(ref, "--json")
    assert proc.returncode == 0, proc.stderr
    cands = json.loads(proc.stdout)["candidates"]
    assert len(cands) == 3 * 39 + 40      # each index walked once: 39 repeats per level, 40 leaves
    assert sum(c["verdict"] == "compatible" for c in cands) == 40
    assert sum("already walked" in c["reason"] for c in cands) == 3 * 39


def test_nesting_deeper_than_the_bound_is_reported_not_walked(tmp_path):
    lay = Layout(tmp_path)
    ref = fan_out(lay, limits.INDEX_DEPTH + 2, 1)
    proc = select(ref, "--json")
    cands = json.loads(proc.stdout)["candidates"]
    assert proc.returncode == 3 and len(cands) == 1
    assert f"deeper than {limits.INDEX_DEPTH} levels" in cands[0]["reason"]
    assert cands[0]["path"] == ".".join(["manifests[0]"] * (limits.INDEX_DEPTH + 1))


def test_validate_says_what_select_would_not_read(tmp_path, monkeypatch):
    """An index past select's bounds is an error for validate too: the candidate bound in a
    file, the nesting bound through a layout whose nested indexes validate can read."""
    from compat.author.lint import lint_index
    monkeypatch.setattr(limits, "CANDIDATES", 5)
    problems = lint_index({"schemaVersion": 2, "manifests": [image(i) for i in range(8)]})
    assert [p.message for p in problems if p.level == "error"] == [
        "select reads only part of this index: the index lists more than 5 candidates (limits.CANDIDATES); "
        "entries past the 5th are ignored"]
    layout = Layout(tmp_path)
    doc = {"schemaVersion": 2, "manifests": [image("leaf")]}
    for level in range(limits.INDEX_DEPTH + 1):           # one level deeper than select walks
        doc = {"schemaVersion": 2, "manifests": [dict(image(level), mediaType=INDEX, digest=layout.blob(doc))]}
    proc = run_hostile("validate", layout.tag("t", doc))
    assert proc.returncode == 1 and "select reads only part of this index: nested index not walked: deeper " \
        f"than {limits.INDEX_DEPTH} levels" in proc.stdout, proc.stdout


def test_the_candidate_bound_is_said(monkeypatch):
    monkeypatch.setattr(limits, "CANDIDATES", 5)
    h = Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3"))
    r = rank({"schemaVersion": 2, "manifests": [image(i) for i in range(8)]}, h)
    assert len(r.candidates) == 6 and r.candidates[-1].verdict == "skipped"
    assert "more than 5 candidates" in r.candidates[-1].reason and r.candidates[-1].path == "manifests[5]"
    assert r.notes == ("the index lists more than 5 candidates (limits.CANDIDATES); "
                       "entries past the 5th are ignored",)


def test_identical_descriptors_are_listed_once():
    h = Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3"))
    r = rank({"schemaVersion": 2, "manifests": [GOOD, dict(GOOD), dict(GOOD, annotations={"x": "y"})]}, h)
    assert [c.verdict for c in r.candidates] == ["compatible", "compatible", "skipped"]
    assert "duplicate of manifests[0]" in r.candidates[2].reason


# -- --platform -------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec", ["linux/amd64/vx", "linux/amd64/8", "linux", "linux/amd64/v3/x", "/linux/amd64",
                                  "linux/amd64/", "linux /amd64", "linux/&amd64", "linux/arm64/v8.10", "",
                                  "linux/amd64/v" + "9" * 5000, "linux\x1b[31m/amd64"])
def test_a_malformed_platform_is_bad_input(tmp_path, spec):
    ref = Layout(tmp_path).tag("t", {"schemaVersion": 2, "manifests": [GOOD]})
    proc = select(ref, "--platform", spec)
    assert proc.returncode == 2 and "--platform" in proc.stderr and "\x1b" not in proc.stderr


def test_validate_reports_a_malformed_descriptor(tmp_path):
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "manifests": [GOOD, MALFORMED[0][1]]}))
    proc = run_hostile("validate", str(f))
    assert proc.returncode == 1 and "error: #2 (" in proc.stdout and "not an amd64 level" in proc.stdout


def test_validate_lists_and_annotate_refuses_malformed_descriptors(tmp_path):
    ref = Layout(tmp_path).tag("t", {"schemaVersion": 2, "manifests": [m[1] for m in MALFORMED] + [GOOD]})
    proc = run_hostile("validate", ref)           # validate lists each one; annotate refuses the index
    assert proc.returncode == 1, proc.stdout
    assert "error: #1 (" in proc.stdout and "platform.variant '8' is not an amd64 level" in proc.stdout
    assert proc.stdout.count("malformed descriptor") >= len(MALFORMED)
    proc = run_hostile("annotate", ref, "--set", "all", "weight=1", "--dry-run")
    assert proc.returncode == 2 and "manifests[0]: platform.variant '8'" in proc.stderr
