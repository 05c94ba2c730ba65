"""Interoperating with the ecosystem: NFD artifacts found and evaluated during selection,
mixed indexes, platform.features / platform.compatibilities, community keys, `compat check`,
NFD as the source of host facts."""
import json
import os
import sys

import pytest

import compat
from compat.nfd.features import from_host
from compat.nfd.nodefeature import from_export, to_host
from compat.nfd.rules import Features, evaluate_spec
from cli_support import NEEDS_V4_AND_IB
from conftest import FIXTURES, HOSTS, detect_json, run_compat
from registry_harness import (DISTRIBUTION, FaultProxy, RunningRegistry, attach_in_layout, attach_in_registry,
                              push_layout)

sys.path.insert(0, FIXTURES)
from build_demo import build  # noqa: E402

P = "org.hpc-compat."
IB = os.path.join(HOSTS, "ib-hdr-zen4")          # zen4 (x86-64-v4), InfiniBand, mlx5_ib loaded
LAPTOP = os.path.join(HOSTS, "laptop-tigerlake")


# NFD's documentation example (examples/image-compatibility.yaml), as the docs give it
NFD_DOC_EXAMPLE = """version: v1alpha1
compatibilities:
- description: "My image requirements"
  rules:
  - name: "kernel and cpu"
    matchFeatures:
    - feature: kernel.loadedmodule
      matchExpressions:
        vfio-pci: {op: Exists}
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: ["Intel", "AMD"]}
  - name: "one of available nics"
    matchAny:
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["0eee"]}
          class: {op: In, value: ["0200"]}
    - matchFeatures:
      - feature: pci.device
        matchExpressions:
          vendor: {op: In, value: ["0fff"]}
          class: {op: In, value: ["0200"]}
"""


def test_nfd_documentation_example_outcomes():
    import yaml
    spec = yaml.safe_load(NFD_DOC_EXAMPLE)
    base = dict(flags={"kernel.loadedmodule": {"vfio-pci", "ip_tables"}},
                attributes={"cpu.model": {"vendor_id": "AMD"}})
    without = Features(instances={"pci.device": [{"vendor": "15b3", "class": "0207"}]}, **base)
    with_nic = Features(instances={"pci.device": [{"vendor": "0fff", "class": "0200"}]}, **base)
    assert [r.ok for r in evaluate_spec(spec, without)[0].rules] == [True, False]
    assert evaluate_spec(spec, with_nic)[0].ok


def test_host_features_from_a_capture():
    host = compat.detect(sysroot=IB)
    f = from_host(host, __import__("compat.host.root", fromlist=["Root"]).Root(IB))
    assert {"X86_64_V1", "X86_64_V4", "AVX512F", "FMA3"} <= f.flags["cpu.cpuid"]
    assert f.attributes["cpu.model"] == {"vendor_id": "AMD", "family": "25", "id": "17"}
    assert "mlx5_ib" in f.flags["kernel.loadedmodule"]
    assert {"vendor": "15b3", "device": "101b", "class": "0207"}.items() <= f.instances["pci.device"][0].items()
    assert f.attributes["system.osrelease"]["VERSION_ID.major"] == "8"
    assert f.attributes["kernel.version"]["major"] == "4"


def layout_with_nfd(tmp_path):
    """A mixed index: annotated, NFD-artifact-only, generic."""
    out = str(tmp_path / "mixed")
    build(out, variants=[
        ("generic", {"os": "linux", "architecture": "amd64"}, {}),
        ("zen3-annotated", {"os": "linux", "architecture": "amd64"}, {"cpu.target": "zen3"}),
        ("nfd-only", {"os": "linux", "architecture": "amd64"}, {}),
    ], attestation=False)
    top = json.load(open(os.path.join(out, "index.json")))["manifests"][0]
    index = json.load(open(os.path.join(out, "blobs", "sha256", top["digest"][7:])))
    digests = [m["digest"] for m in index["manifests"]]
    attach_in_layout(out, index["manifests"][2], NEEDS_V4_AND_IB, "2026-01-01T00:00:00Z")
    return "oci:" + out, digests


def test_mixed_index_in_a_layout(tmp_path):
    ref, (generic, zen3, nfd_only) = layout_with_nfd(tmp_path)
    # InfiniBand zen4 host: the NFD-described image holds its best set (weight 60, 2 rules), but
    # the zen3 build is nearer the host's CPU, and CPU specificity ranks before weight
    from compat.host.root import Root
    ib = compat.detect(sysroot=IB)
    sel = compat.select(ref, host=ib, features=lambda: from_host(ib, Root(IB)))
    assert sel.digest == zen3
    nfd_cand = [c for c in sel.candidates if c.digest == nfd_only][0]
    assert nfd_cand.compatible and "set 1 (avx512-ib) holds" in nfd_cand.reason and nfd_cand.key[5] == 60
    # laptop (v4, no InfiniBand module): the fallback set holds (weight 5), zen3 fails (Intel)
    laptop = compat.detect(sysroot=LAPTOP)
    sel = compat.select(ref, host=laptop)
    assert sel.digest == nfd_only and "set 2 (fallback) holds" in sel.chosen.reason
    # --tags keeps only the avx512-ib set: on the laptop it fails, the generic wins
    sel = compat.select(ref, host=laptop, tags=["avx512-ib"])
    assert sel.digest == generic
    failed = [c for c in sel.candidates if c.digest == nfd_only][0]
    assert failed.verdict == "incompatible" and "kernel.loadedmodule.mlx5_ib Exists" in failed.reason
    # without referrers, the NFD-only image is just a generic entry again (index order decides)
    sel = compat.select(ref, host=laptop, referrers=False)
    assert sel.digest == generic


def test_newest_artifact_wins_and_missing_dates_are_oldest(tmp_path):
    ref, (_, _, nfd_only) = layout_with_nfd(tmp_path)
    layout = ref[4:]
    top = json.load(open(os.path.join(layout, "index.json")))
    index = json.load(open(os.path.join(layout, "blobs", "sha256", top["manifests"][0]["digest"][7:])))
    subject = index["manifests"][2]
    never = NEEDS_V4_AND_IB.replace("X86_64_V2", "X86_64_V9").replace("X86_64_V4", "X86_64_V9")
    attach_in_layout(layout, subject, never, "2025-06-01T00:00:00Z")   # older: ignored
    attach_in_layout(layout, subject, never, None)                      # undated: oldest
    sel = compat.select(ref, host=compat.detect(sysroot=LAPTOP))
    assert sel.digest == nfd_only
    attach_in_layout(layout, subject, never, "2026-06-01T00:00:00Z")   # newest: now it rules
    sel = compat.select(ref, host=compat.detect(sysroot=LAPTOP))
    assert sel.digest != nfd_only
    assert "no compatibility set holds" in [c for c in sel.candidates if c.digest == nfd_only][0].reason


def test_malformed_rule_is_an_error_not_a_false(tmp_path):
    ref, (_, _, nfd_only) = layout_with_nfd(tmp_path)
    layout = ref[4:]
    top = json.load(open(os.path.join(layout, "index.json")))
    index = json.load(open(os.path.join(layout, "blobs", "sha256", top["manifests"][0]["digest"][7:])))
    bad = NEEDS_V4_AND_IB.replace("X86_64_V4: {op: Exists}", "X86_64_V4: {op: Teleport}")
    attach_in_layout(layout, index["manifests"][2], bad, "2027-01-01T00:00:00Z")
    c = [c for c in compat.resolve(ref, host=compat.detect(sysroot=IB)).candidates if c.digest == nfd_only][0]
    assert c.verdict == "error" and c.reason.startswith("nfd: ")


@pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry not installed")
def test_registry_tag_fallback_and_referrers_api(tmp_path):
    ref, digests = layout_with_nfd(tmp_path)
    reg = RunningRegistry(tmp_path / "reg")
    proxy = None
    try:
        push_layout(ref[4:], reg.host, "hpc/mixed", "1")
        top = json.load(open(os.path.join(ref[4:], "index.json")))["manifests"][0]
        index = json.load(open(os.path.join(ref[4:], "blobs", "sha256", top["digest"][7:])))
        attach_in_registry(reg.host, "hpc/mixed", index["manifests"][2], NEEDS_V4_AND_IB, "2026-01-01T00:00:00Z")
        laptop_args = ["--sysroot", LAPTOP, "--format", "digest"]
        # distribution 2.8: referrers API 404 -> the sha256-<hex> tag
        out = run_compat("select", f"{reg.host}/hpc/mixed:1", *laptop_args, check=0).stdout.strip()
        assert out == digests[2]
        # a standards-following referrers endpoint in front of the same registry
        proxy = FaultProxy(reg.port)
        proxy.referrers = {digests[2]: []}         # the API says: no referrers
        out = run_compat("select", f"{proxy.host}/hpc/mixed:1", *laptop_args, check=0).stdout.strip()
        assert out == digests[0]                   # the API is believed; no tag fallback
        assert not any("sha256-" in p for _, p in proxy.seen)
        # with the artifact listed and filtering applied by the server
        art = json.loads(run_compat("check", f"{reg.host}/hpc/mixed:1", "--sysroot", LAPTOP, "--json",
                                    check=0).stdout)
        art_digest = [c for c in art["candidates"] if c["digest"] == digests[2]][0]["nfd"]["artifact"]
        proxy.referrers = {digests[2]: [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                         "digest": art_digest, "size": 1,
                                         "artifactType": "application/vnd.nfd.image-compatibility.v1alpha1"},
                                        {"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                         "digest": "sha256:" + "0" * 64, "size": 1,
                                         "artifactType": "application/vnd.example.sbom"}]}
        proxy.filters_applied = True
        proxy.seen.clear()
        out = run_compat("select", f"{proxy.host}/hpc/mixed:1", *laptop_args, check=0).stdout.strip()
        assert out == digests[2]
        assert any("/referrers/" in p and "artifactType=" in p for _, p in proxy.seen)
    finally:
        if proxy:
            proxy.stop()
        reg.stop()


def test_check_reports_every_rule_like_validate_node(tmp_path):
    ref, (_, _, nfd_only) = layout_with_nfd(tmp_path)
    text = run_compat("check", ref, "--sysroot", LAPTOP, check=0).stdout
    assert "COMPATIBILITY SET #1 Weight: 60; Tag: avx512-ib  FAIL" in text
    assert "RULE: fabric - FAIL" in text and "FAIL  kernel.loadedmodule.mlx5_ib Exists" in text
    assert "COMPATIBILITY SET #2 Weight: 5; Tag: fallback  OK" in text
    assert "FAIL  cpu              needs zen3; host is icelake" in text
    doc = json.loads(run_compat("check", ref, "--sysroot", LAPTOP, "--json", check=0).stdout)
    nfd = [c for c in doc["candidates"] if c["digest"] == nfd_only][0]["nfd"]
    rule = nfd["sets"][0]["rules"][1]
    assert rule == {"name": "fabric", "isMatch": False, "matchedExpressions": [
        {"feature": "kernel.loadedmodule", "name": "mlx5_ib", "expression": {"op": "Exists"},
         "matcherType": "matchExpression", "isMatch": False}]}
    assert nfd["sets"][0]["weight"] == 60 and nfd["sets"][0]["tag"] == "avx512-ib"
    assert doc["selected"] == nfd_only


# -- index-level formats and community keys --------------------------------------------------------

def rank_one(platform, annotations, host):
    from compat.match.rank import rank
    d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "a" * 64, "size": 1,
         "platform": platform}
    if annotations:
        d["annotations"] = annotations
    return rank({"schemaVersion": 2, "manifests": [d]}, host).candidates[0]


def test_platform_features_proposal_e():
    zen3 = compat.detect(assume={"cpu.target": "zen3"}, sysroot=LAPTOP)
    plat = {"os": "linux", "architecture": "amd64"}
    assert rank_one(dict(plat, features=["avx2", "bmi2"]), {}, zen3).compatible
    c = rank_one(dict(plat, features=["avx512f"]), {}, zen3)
    assert not c.compatible and "host CPU lacks avx512f" in c.reason
    c = rank_one(dict(plat, features=["avx2", "warpdrive"]), {}, zen3)
    assert not c.compatible and "unknown platform feature warpdrive" in c.reason
    assert rank_one(dict(plat, features=["avx2", "bmi2"]), {}, zen3).key[4] == 2


def test_platform_compatibilities_proposal_h():
    host = compat.detect(sysroot=IB)     # zen4, kernel 4.18, Open MPI 4.1.5 (pkg-config)
    plat = {"os": "linux", "architecture": "amd64"}
    sets = [{"oci.cpu.features": "AVX512F,", "oci.os.openmpi": "[4.1.0, 5.0.0)", "compatibility-score": "100"},
            {"oci.cpu.features": "AVX2,", "compatibility-score": "50"}]
    c = rank_one(dict(plat, compatibilities=sets), {}, host)
    assert c.compatible and "set 1 holds (score 100)" in c.reason and c.key[5] == 100
    sets[0]["oci.kernel.versions"] = "[5.10, 6.0)"
    c = rank_one(dict(plat, compatibilities=sets), {}, host)
    assert c.compatible and "set 2 holds (score 50)" in c.reason
    c = rank_one(dict(plat, compatibilities=[{"oci.gpu.magic": "yes"}]), {}, host)
    assert not c.compatible and "unknown label oci.gpu.magic" in c.reason


def test_community_keys_are_read_as_compat_keys():
    host = compat.detect(sysroot=IB, assume=["mpi.implementation=openmpi", "mpi.version=4.1.5"])
    plat = {"os": "linux", "architecture": "amd64"}
    c = rank_one(plat, {"io.archspec.cpu.target": "zen4", "org.supercontainers.mpi.provider": "OpenMPI",
                        "org.supercontainers.openmpi.version": "4.1", "org.supercontainers.mpi.portability.mode":
                        "mpi_system"}, host)
    assert c.compatible and "zen4 <= zen4" in c.reason and "hybrid with host openmpi 4.1.5" in c.reason
    c = rank_one(plat, {"io.archspec.cpu.target": "sapphirerapids"}, host)
    assert not c.compatible and "needs sapphirerapids" in c.reason
    # an explicit compat key wins over its alias
    c = rank_one(plat, {"io.archspec.cpu.target": "sapphirerapids", P + "cpu.target": "zen4"}, host)
    assert c.compatible


# -- NFD as the source of host facts -------------------------------------------------------------

def test_nfd_features_file_and_nodefeature_round_trip(tmp_path):
    text = run_compat("detect", "--format", "nfd-features", "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"),
                      check=0).stdout
    lines = [l for l in text.splitlines() if l and not l.startswith("#")]
    local = dict(l.split("=", 1) for l in lines)
    assert local["hpc-compat.org/gpu.cc"] == "9.0" and local["hpc-compat.org/mpi.implementation"] == "openmpi"
    assert all(len(v) <= 63 for v in local.values())
    # the NodeFeature NFD would publish for that node: its own features plus the local file
    prof = detect_json("--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"))
    node = {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature",
            "metadata": {"name": "gpu-a001"},
            "spec": {"features": {
                "flags": {"cpu.cpuid": {"elements": {f: {} for f in
                                                     ["AVX2", "AVX512F", "FMA3", "X86_64_V1", "X86_64_V2",
                                                      "X86_64_V3", "X86_64_V4", "AMXTILE"]}}},
                "attributes": {"cpu.model": {"elements": {"vendor_id": "Intel", "family": "6", "id": "143"}},
                               "kernel.version": {"elements": {"full": prof["os"]["kernel"], "major": "5"}},
                               "local.feature": {"elements": local}},
                "instances": {"pci.device": {"elements": [{"attributes": {"vendor": "10de", "class": "0302"}}]}}}}}
    import yaml
    f = tmp_path / "nodefeature.yaml"
    f.write_text(yaml.safe_dump(node))
    demo = "oci:" + os.path.join(FIXTURES, "demo")
    via_nfd = run_compat("select", demo, "--host", str(f), "--format", "digest", check=0).stdout.strip()
    direct = run_compat("select", demo, "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"),
                        "--format", "digest", check=0).stdout.strip()
    assert via_nfd == direct
    summary = run_compat("detect", "--host", str(f), check=0).stdout
    assert "sapphirerapids" in summary and "cc 9.0" in summary and "openmpi 4.1.5" in summary


def test_nfd_export_without_local_features_still_works(tmp_path):
    export = {"flags": {"cpu.cpuid": {"elements": {"X86_64_V1": {}, "X86_64_V2": {}, "X86_64_V3": {}, "AVX2": {},
                                                   "FMA3": {}}}},
              "attributes": {"cpu.model": {"elements": {"vendor_id": "AMD"}}},
              "instances": {}}
    host = to_host(from_export(export), "export.json")
    assert host.os.arch == "amd64" and host.cpu.x86_64_level == 3 and host.mpi is None
    f = tmp_path / "export.json"
    f.write_text(json.dumps(export))
    demo = "oci:" + os.path.join(FIXTURES, "demo")
    proc = run_compat("select", demo, "--host", str(f), "--explain", check=0)
    assert "x86-64-v3 build" in proc.stdout.split("SELECTED", 1)[1].splitlines()[0]


TEMPLATED = """version: v1alpha1
compatibilities:
- tag: probe
  weight: 1
  rules:
  - name: avx levels
    varsTemplate: |
      {{ range .cpu.cpuid }}level-{{ .Name | lower }}=true
      {{ end }}
    matchFeatures:
    - feature: cpu.cpuid
      matchName: {op: InRegexp, value: ["^(?i)x86_64_v[34]$"]}
- tag: avx512
  weight: 50
  rules:
  - name: uses the probe's vars
    matchFeatures:
    - feature: rule.matched
      matchExpressions:
        level-x86_64_v4: {op: IsTrue}
"""


def test_templates_regexps_and_backreferences_in_a_select(tmp_path):
    """An artifact whose second set reads the vars the first set's varsTemplate made, with a
    Go-only regexp (flags after ^): the v4 laptop holds the weight-50 set."""
    out = str(tmp_path / "tmpl")
    build(out, variants=[("generic", {"os": "linux", "architecture": "amd64"}, {}),
                         ("nfd", {"os": "linux", "architecture": "amd64"}, {})], attestation=False)
    top = json.load(open(os.path.join(out, "index.json")))["manifests"][0]
    index = json.load(open(os.path.join(out, "blobs", "sha256", top["digest"][7:])))
    attach_in_layout(out, index["manifests"][1], TEMPLATED, "2026-01-01T00:00:00Z")
    laptop = compat.detect(sysroot=LAPTOP)
    sel = compat.select("oci:" + out, host=laptop)
    assert sel.digest == index["manifests"][1]["digest"]
    assert "set 2 (avx512) holds" in sel.chosen.reason and sel.chosen.key[5] == 50
    bad = TEMPLATED.replace("=true", "")          # lines without '=': the candidate is an error
    attach_in_layout(out, index["manifests"][1], bad, "2026-02-01T00:00:00Z")
    sel = compat.resolve("oci:" + out, host=laptop)
    cand = [c for c in sel.candidates if c.digest == index["manifests"][1]["digest"]][0]
    assert cand.verdict == "error" and "varsTemplate" in cand.reason
    assert sel.ranking.best.digest == index["manifests"][0]["digest"]
