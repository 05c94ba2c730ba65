"""Hostile NFD artifacts and NodeFeature documents: each bad artifact excludes only its own
candidate, with its reason; the others are still ranked; the CLI keeps the exit-code
contract under a 2 GB / 20 s limit."""
import hashlib
import json
import os
import sys

import pytest

import compat
from compat import limits
from conftest import FIXTURES, HOSTS
from helpers import run_hostile

sys.path.insert(0, FIXTURES)
from build_demo import build  # noqa: E402

LAPTOP = os.path.join(HOSTS, "laptop-tigerlake")
ARTIFACT_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"
GOOD_SPEC = b"""version: v1alpha1
compatibilities:
- rules:
  - name: v2
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        X86_64_V2: {op: Exists}
"""
BILLION_LAUGHS = b"""version: v1alpha1
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
compatibilities: [*i]
"""


def _blob(layout, data: bytes) -> str:
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", d[7:]), "wb") as fh:
        fh.write(data)
    return d


def attach(layout, subject, layer: bytes, layer_desc=None, man_extra=None, desc_extra=None):
    """An NFD artifact as `oras attach --oci-layout` leaves it, with parts overridden."""
    ld = {"mediaType": "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml",
          "digest": _blob(layout, layer), "size": len(layer)}
    ld.update(layer_desc or {})
    man = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
           "artifactType": ARTIFACT_TYPE,
           "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": _blob(layout, b"{}"), "size": 2},
           "layers": [ld],
           "subject": {"mediaType": subject["mediaType"], "digest": subject["digest"], "size": subject["size"]}}
    man.update(man_extra or {})
    mb = json.dumps(man).encode()
    desc = {"mediaType": man["mediaType"], "digest": _blob(layout, mb), "size": len(mb),
            "artifactType": ARTIFACT_TYPE}
    desc.update(desc_extra or {})
    path = os.path.join(layout, "index.json")
    top = json.load(open(path))
    top["manifests"].append(desc)
    json.dump(top, open(path, "w"))


def three_nfd_images(tmp_path):
    """generic, good-artifact, bad-artifact (to be attached by the test)."""
    out = str(tmp_path / "layout")
    build(out, variants=[("generic", {"os": "linux", "architecture": "amd64"}, {}),
                         ("good", {"os": "linux", "architecture": "amd64"}, {}),
                         ("bad", {"os": "linux", "architecture": "amd64"}, {})], attestation=False)
    top = json.load(open(os.path.join(out, "index.json")))["manifests"][0]
    index = json.load(open(os.path.join(out, "blobs", "sha256", top["digest"][7:])))
    generic, good, bad = index["manifests"]
    attach(out, good, GOOD_SPEC)
    return out, generic, good, bad


HOSTILE = {
    "billion laughs": dict(layer=BILLION_LAUGHS),
    "integer created": dict(layer=GOOD_SPEC, desc_extra={"annotations": {"org.opencontainers.image.created": 1}}),
    "layer digest not a digest": dict(layer=GOOD_SPEC, layer_desc={"digest": "sha256:../../../etc/passwd"}),
    "missing layer blob": dict(layer=GOOD_SPEC, layer_desc={"digest": "sha256:" + "0" * 64}),
    "no layers": dict(layer=GOOD_SPEC, man_extra={"layers": []}),
    "layer too large": dict(layer=GOOD_SPEC, layer_desc={"size": limits.ARTIFACT_BYTES + 1}),
    "layer size lies": dict(layer=GOOD_SPEC, layer_desc={"size": 3}),
    "layer size not a number": dict(layer=GOOD_SPEC, layer_desc={"size": "12"}),
    "manifest too large": dict(layer=GOOD_SPEC, desc_extra={"size": limits.ARTIFACT_BYTES + 1}),
    "spec is a list": dict(layer=b"- 1\n- 2\n"),
    "spec is a string": dict(layer=b"just text"),
    "spec not YAML": dict(layer=b"version: [v1alpha1\n"),
    "deep spec": dict(layer=b"[" * 10000 + b"]" * 10000),
    "compatibilities not objects": dict(layer=b"version: v1alpha1\ncompatibilities: [1, 2]\n"),
    "expression not an object": dict(layer=GOOD_SPEC.replace(b"{op: Exists}", b"7")),
    "exponential regexp": dict(layer=GOOD_SPEC.replace(b"cpu.cpuid", b"local.feature").replace(
        b"X86_64_V2: {op: Exists}", b'long: {op: InRegexp, value: ["^(.+)+!$"]}')),
}
LONG = "a" * 5000          # Python's re needs 2**n steps for ^(.+)+!$ on n characters; RE2 is linear


def laptop_features():
    from compat.host.root import Root
    from compat.nfd.features import from_host
    host = compat.detect(sysroot=LAPTOP)
    f = from_host(host, Root(LAPTOP))
    return host, f.with_attributes("local.feature", {"long": LONG})


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_hostile_artifact_excludes_only_its_candidate(tmp_path, case):
    out, generic, good, bad = three_nfd_images(tmp_path)
    attach(out, bad, **HOSTILE[case])
    laptop, features = laptop_features()
    sel = compat.resolve("oci:" + out, host=laptop, features=features)
    by = {c.digest: c for c in sel.candidates}
    assert by[good["digest"]].compatible and by[generic["digest"]].compatible
    if case == "exponential regexp":          # a valid pattern: evaluated in linear time, no match
        assert by[bad["digest"]].verdict == "incompatible"
    else:
        assert by[bad["digest"]].verdict == "error", by[bad["digest"]]
        assert "NFD artifact" in by[bad["digest"]].reason or "nfd:" in by[bad["digest"]].reason
    assert sel.ranking.best.digest == good["digest"]


def test_hostile_artifact_reasons_name_the_problem(tmp_path):
    reasons = {}
    for case in ("billion laughs", "integer created", "layer digest not a digest", "layer too large",
                 "no layers", "spec is a list"):
        d = tmp_path / case.replace(" ", "-")
        d.mkdir()
        out, _, _, bad = three_nfd_images(d)
        attach(out, bad, **HOSTILE[case])
        sel = compat.resolve("oci:" + out, host=compat.detect(sysroot=LAPTOP))
        reasons[case] = next(c.reason for c in sel.candidates if c.digest == bad["digest"])
    assert "values once its aliases are expanded" in reasons["billion laughs"]
    assert "annotations must map names to strings" in reasons["integer created"]
    assert "malformed digest" in reasons["layer digest not a digest"]
    assert f"more than the {limits.ARTIFACT_BYTES}" in reasons["layer too large"]
    assert "no spec layer" in reasons["no layers"]
    assert "the spec must be a mapping" in reasons["spec is a list"]


def nodefeature_with_long_value(tmp_path) -> str:
    doc = {"kind": "NodeFeature", "spec": {"features": {
        "flags": {"cpu.cpuid": {"elements": {"X86_64_V1": {}, "X86_64_V2": {}}}},
        "attributes": {"local.feature": {"elements": {"long": LONG, "hpc-compat.org/os.arch": "amd64"}}}}}}
    f = tmp_path / "node.json"
    f.write_text(json.dumps(doc))
    return str(f)


@pytest.mark.parametrize("case", ["billion laughs", "exponential regexp", "integer created", "deep spec"])
def test_cli_select_and_check_keep_the_contract(tmp_path, case):
    out, _, good, bad = three_nfd_images(tmp_path)
    attach(out, bad, **HOSTILE[case])
    host = nodefeature_with_long_value(tmp_path)
    proc = run_hostile("select", "oci:" + out, "--host", host, "--format", "digest")
    assert proc.returncode == 0 and good["digest"] in proc.stdout
    proc = run_hostile("check", "oci:" + out, "--host", host)
    assert proc.returncode == 0 and bad["digest"][:19] in proc.stdout


def test_billion_laughs_nodefeature_is_bad_input(tmp_path):
    f = tmp_path / "nodefeature.yaml"
    f.write_bytes(BILLION_LAUGHS.replace(b"version: v1alpha1", b"kind: NodeFeature"))
    proc = run_hostile("detect", "--host", str(f))
    assert proc.returncode == 2 and "aliases are expanded" in proc.stderr


@pytest.mark.parametrize("doc", [
    {"kind": "NodeFeature", "spec": "nope"},
    {"kind": "NodeFeature", "spec": {"features": {"flags": {"cpu.cpuid": {"elements": [1, 2]}}}}},
    {"flags": {"1": {"elements": {"7": {}}}}, "attributes": {"x.y": {"elements": "str"}}},
    {"instances": {"pci.device": {"elements": [{"attributes": 5}]}}},
])
def test_malformed_nodefeature_documents_keep_the_contract(tmp_path, doc):
    f = tmp_path / "nf.json"
    f.write_text(json.dumps(doc))
    proc = run_hostile("detect", "--host", str(f))
    assert proc.returncode in (0, 2)


def test_host_file_that_is_not_a_regular_file_is_refused(tmp_path):
    proc = run_hostile("detect", "--host", "/dev/zero")
    assert proc.returncode == 2 and "not a regular file" in proc.stderr


def _sysroot_with_config_gz(tmp_path, payload_chunks, chunk=b"CONFIG_X86=y\n" * 80_000):
    import shutil
    import zlib
    root = tmp_path / "sysroot"
    shutil.copytree(LAPTOP, root, symlinks=True)
    (root / "proc").mkdir(exist_ok=True)
    gz = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    data = b"".join(gz.compress(chunk) for _ in range(payload_chunks)) + gz.flush()
    (root / "proc" / "config.gz").write_bytes(data)
    return str(root)


def test_kernel_config_gz_is_read_within_bounds(tmp_path):
    from compat.host.root import Root
    from compat.nfd.features import from_host
    ok_root = _sysroot_with_config_gz(tmp_path / "ok", 1)
    f = from_host(compat.detect(sysroot=ok_root), Root(ok_root))
    assert f.attributes["kernel.config"]["X86"] == "y"
    bomb = _sysroot_with_config_gz(tmp_path / "bomb", (limits.CONFIG_GZ_BYTES >> 20) + 2)  # ~68 MB
    assert os.path.getsize(os.path.join(bomb, "proc", "config.gz")) < 1 << 20
    f = from_host(compat.detect(sysroot=bomb), Root(bomb))
    assert "kernel.config" not in f.attributes


@pytest.mark.parametrize("count", ["\u00b2", "99999999999", "-1", "1e9"])
def test_gpu_count_in_local_features_is_bounded(tmp_path, count):
    doc = {"attributes": {"local.feature": {"elements": {"hpc-compat.org/gpu.nvidia.count": count,
                                                         "hpc-compat.org/cpu.target": "zen4"}}}}
    f = tmp_path / "node.json"
    f.write_text(json.dumps(doc))
    proc = run_hostile("detect", "--host", str(f))
    assert proc.returncode == 2 and "is not a whole number of GPUs" in proc.stderr
