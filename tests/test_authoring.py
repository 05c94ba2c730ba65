"""compat annotate and compat validate: round trips through a real registry and OCI layouts,
read back by skopeo; validation errors as a user sees them."""
import contextlib
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, HOSTS, run_compat
from registry_harness import DISTRIBUTION, RunningRegistry

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

from helpers import P  # noqa: E402
need_skopeo = pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")
need_registry = pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry not installed")

VARIANT_ARGS = [
    ["generic"], ["zen4", "cpu.target=zen4"],
    ["cuda12.4", "cpu.target=x86_64_v3", "gpu.cuda.version=12.4", "gpu.cuda.arch=sm_80,sm_90,compute_90"],
    ["openmpi-ib", "mpi.implementation=openmpi", "mpi.version=4.1", "mpi.mode=hybrid", "fabric=infiniband",
     "fabric.providers=verbs"],
    ["arm64-generic"], ["a64fx", "cpu.target=a64fx"],
]
HOST_EXPECT = [  # (sysroot or None, assume, expected variant)
    ("nvidia-4xh100-nonvml", [], "cuda12.4"),
    ("ib-hdr-zen4", ["gpu.vendor=none", "mpi.implementation=openmpi", "mpi.version=4.1.5"], "openmpi-ib"),
    ("ib-hdr-zen4", ["gpu.vendor=none", "mpi.implementation=none"], "zen4"),
    ("laptop-tigerlake", [], "generic"),
]


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("variants")
    digests = build_variant_images(str(d / "src"))
    return str(d / "src"), digests


@contextlib.contextmanager
def registry_with_variants(src, workdir, names):
    """A real registry holding the author's variant images as hpc/app:<name>, pushed by a
    real tool (skopeo); stopped on exit."""
    reg = RunningRegistry(workdir)
    try:
        for name in names:
            subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{src}:{name}",
                            f"docker://{reg.host}/hpc/app:{name}"], check=True, capture_output=True)
        yield reg
    finally:
        reg.stop()


def variant_flags(prefix):
    out = []
    for name, *pairs in VARIANT_ARGS:
        out += ["--variant", f"{prefix}{name}", *pairs]
    return out


def select_for(ref, sysroot, assume, *extra):
    args = ["select", ref, "--format", "digest", "--sysroot", os.path.join(HOSTS, sysroot), *extra]
    for a in assume:
        args += ["--assume", a]
    return run_compat(*args, check=0).stdout.strip()


@need_skopeo
def test_layout_round_trip(images, tmp_path):
    src, digests = images
    out = f"oci:{tmp_path}/app:2024"
    proc = run_compat("annotate", out, *variant_flags(f"oci:{src}:"), check=0)
    index_digest = proc.stdout.strip()
    assert index_digest.startswith("sha256:") and proc.stderr == ""
    raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", f"oci:{tmp_path}/app:2024"],
                                    capture_output=True, text=True, check=True).stdout)
    assert [m["digest"] for m in raw["manifests"]] == [digests[v[0]] for v in VARIANT_ARGS]
    assert raw["manifests"][1]["annotations"] == {P + "cpu.target": "zen4"}
    assert raw["manifests"][4]["platform"] == {"architecture": "arm64", "os": "linux"}   # from the config
    for sysroot, assume, expected in HOST_EXPECT:
        assert select_for(out, sysroot, assume) == digests[expected], (sysroot, assume)
    # skopeo can copy the pinned child out of the layout the annotate wrote
    child = select_for(out, "nvidia-4xh100-nonvml", [])
    ok = subprocess.run(["skopeo", "copy", f"oci:{tmp_path}/app:2024", f"oci:{tmp_path}/copy:x"],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert child == digests["cuda12.4"]


def test_same_input_gives_the_same_index(images, tmp_path):
    src, _ = images
    a = run_compat("annotate", f"oci:{tmp_path}/a:1", *variant_flags(f"oci:{src}:"), check=0).stdout
    b = run_compat("annotate", f"oci:{tmp_path}/a:1", *variant_flags(f"oci:{src}:"), check=0).stdout
    assert a == b
    dry = run_compat("annotate", f"oci:{tmp_path}/a:1", *variant_flags(f"oci:{src}:"), "--dry-run", check=0).stdout
    import hashlib
    assert "sha256:" + hashlib.sha256(dry.rstrip("\n").encode()).hexdigest() == a.strip()


def test_dry_run_pushes_nothing(images, tmp_path):
    src, _ = images
    proc = run_compat("annotate", f"oci:{tmp_path}/dry:1", *variant_flags(f"oci:{src}:"), "--dry-run", check=0)
    doc = json.loads(proc.stdout)
    assert len(doc["manifests"]) == len(VARIANT_ARGS)
    assert not os.path.exists(tmp_path / "dry" / "index.json")


def test_invalid_value_stops_with_key_variant_and_reason(images, tmp_path):
    src, _ = images
    proc = run_compat("annotate", f"oci:{tmp_path}/bad:1", "--variant", f"oci:{src}:generic",
                      "--variant", f"oci:{src}:cuda12.4", "gpu.cuda.arch=sm_9x", "gpu.colour=green")
    assert proc.returncode == 1
    assert f"error: #2 (oci:{src}:cuda12.4): {P}gpu.cuda.arch: 'sm_9x' is not sm_XY" in proc.stderr
    assert f"{P}gpu.colour: unknown key" in proc.stderr
    assert "nothing was pushed" in proc.stderr
    assert not os.path.exists(tmp_path / "bad" / "index.json")


def test_warnings_for_indexes_runtimes_use_badly(images, tmp_path):
    src, _ = images
    proc = run_compat("annotate", f"oci:{tmp_path}/w:1",
                      "--variant", f"oci:{src}:zen4", "cpu.target=zen4",
                      "--variant", f"oci:{src}:generic",
                      "--variant", f"oci:{src}:zen3", "cpu.target=zen4",
                      "--variant", f"oci:{src}:a64fx", "cpu.target=a64fx", check=0)
    err = proc.stderr
    assert "warning: platform linux/amd64: the generic baseline is #2 (" in err and "comes first" in err
    assert "warning: #3 (" in err and "same platform and annotations as #1 (" in err
    assert "warning: platform linux/arm64: no generic baseline" in err


def test_variants_file_yaml(images, tmp_path):
    src, digests = images
    f = tmp_path / "variants.yaml"
    f.write_text(f"""
index: oci:{tmp_path}/fromfile:1
annotations:
  org.opencontainers.image.title: demo
variants:
  - ref: oci:{src}:generic
  - ref: oci:{src}:cuda12.4
    annotations:
      gpu.cuda.version: "12.4"
      org.hpc-compat.gpu.cuda.arch: sm_90
  - ref: oci:{src}:arm64-generic
""")
    run_compat("annotate", "--variants", str(f), check=0)
    assert select_for(f"oci:{tmp_path}/fromfile:1", "nvidia-4xh100-nonvml", []) == digests["cuda12.4"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("variants:\n  - reff: x\n")
    proc = run_compat("annotate", "--variants", str(bad))
    assert proc.returncode == 1 and "'ref' is a required property" in proc.stderr


def test_rewrite_changes_annotations_not_images(images, tmp_path):
    src, digests = images
    ref = f"oci:{tmp_path}/rw:1"
    first = run_compat("annotate", ref, *variant_flags(f"oci:{src}:"), check=0).stdout.strip()
    zen4 = digests["zen4"]
    second = run_compat("annotate", ref, "--set", zen4[:19], "weight=5", "--set", "linux/arm64", "os.kernel=>=5.10",
                        "--unset", "#2", "cpu.target", check=0).stdout.strip()
    assert second != first
    doc = json.loads(run_compat("annotate", ref, "--set", zen4[:19], "weight=5", "--dry-run", check=0).stdout)
    assert [m["digest"] for m in doc["manifests"]] == [digests[v[0]] for v in VARIANT_ARGS]
    assert doc["manifests"][1]["annotations"] == {P + "weight": "5"}
    assert doc["manifests"][4]["annotations"] == {P + "os.kernel": ">=5.10"}
    # the same edit again changes nothing and pushes nothing
    again = run_compat("annotate", ref, "--set", zen4[:19], "weight=5", check=0)
    assert again.stdout.strip() == second and "unchanged" in again.stderr


def test_rewrite_refuses_invalid_values(images, tmp_path):
    src, _ = images
    ref = f"oci:{tmp_path}/rw2:1"
    run_compat("annotate", ref, *variant_flags(f"oci:{src}:"), check=0)
    proc = run_compat("annotate", ref, "--set", "all", "os.kernel=>=five")
    assert proc.returncode == 1 and "not a version specifier" in proc.stderr


@need_registry
@need_skopeo
def test_registry_round_trip(images, tmp_path):
    src, digests = images
    with registry_with_variants(src, tmp_path / "reg", [v[0] for v in VARIANT_ARGS]) as reg:
        ref = f"{reg.host}/hpc/app:2024"
        proc = run_compat("annotate", ref, *variant_flags(f"{reg.host}/hpc/app:"), check=0)
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                             capture_output=True, text=True, check=True).stdout
        import hashlib
        assert "sha256:" + hashlib.sha256(raw.encode()).hexdigest() == proc.stdout.strip()
        for sysroot, assume, expected in HOST_EXPECT:
            assert select_for(ref, sysroot, assume) == digests[expected]
        # into another repository of the same registry: blobs are mounted, images copied
        other = f"{reg.host}/other/app:1"
        run_compat("annotate", other, *variant_flags(f"{reg.host}/hpc/app:"), check=0)
        assert select_for(other, "nvidia-4xh100-nonvml", []) == digests["cuda12.4"]
        ok = subprocess.run(["skopeo", "copy", "--src-tls-verify=false",
                             f"docker://{reg.host}/other/app@{digests['cuda12.4']}", f"oci:{tmp_path}/c:x"],
                            capture_output=True, text=True)
        assert ok.returncode == 0, ok.stderr
        # validate reads it back clean
        assert run_compat("validate", ref).returncode == 0


# -- validate ------------------------------------------------------------------------------------

def write_index(tmp_path, manifests):
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": manifests}))
    return str(f)


def desc(n, arch="amd64", **ann):
    d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + f"{n:x}" * 64,
         "size": 10, "platform": {"os": "linux", "architecture": arch}}
    d["digest"] = d["digest"][:71]
    if ann:
        d["annotations"] = {P + k.replace("_", "."): v for k, v in ann.items()}
    return d


def test_validate_clean_index_exit_0(tmp_path):
    f = write_index(tmp_path, [desc(1), desc(2, cpu_target="zen4"), desc(3, "arm64")])
    proc = run_compat("validate", f)
    assert proc.returncode == 0 and proc.stdout.strip().endswith("clean")


@pytest.mark.parametrize("ann,expected", [
    ({"gpu_cuda_arch": "sm_9x"}, "error: #2 (sha256:222222222222): org.hpc-compat.gpu.cuda.arch: 'sm_9x' is not sm_XY, sm_XYa, sm_XYf, compute_XY, compute_XYa or compute_XYf"),
    ({"os_kernel": ">=five"}, "error: #2 (sha256:222222222222): org.hpc-compat.os.kernel: '>=five' is not a version specifier like '>=5.10'"),
    ({"gpu_colour": "green"}, "error: #2 (sha256:222222222222): org.hpc-compat.gpu.colour: unknown key"),
    ({"mpi_mode": "pmi"}, "error: #2 (sha256:222222222222): org.hpc-compat.mpi.mode: 'pmi' needs org.hpc-compat.mpi.pmi"),
    ({"gpu_vendor": "amd", "gpu_cuda_version": "12.4"}, "error: #2 (sha256:222222222222): org.hpc-compat.gpu.vendor: 'amd' contradicts the nvidia keys beside it"),
    ({"weight": "heavy"}, "error: #2 (sha256:222222222222): org.hpc-compat.weight: 'heavy' is not an integer"),
])
def test_validate_reports_each_error_class(tmp_path, ann, expected):
    f = write_index(tmp_path, [desc(1), desc(2, **ann)])
    proc = run_compat("validate", f)
    assert proc.returncode == 1
    assert any(line.startswith(expected) for line in proc.stdout.splitlines()), proc.stdout


def test_validate_structure_error(tmp_path):
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "manifests": [{"mediaType": "x", "size": 1}]}))
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1 and "error: #1: malformed descriptor: missing or malformed digest" in proc.stdout


def test_validate_reports_every_malformed_descriptor(tmp_path):
    """Type confusion in descriptors is reported per descriptor (the entries selection would
    exclude), not just the first, and the well-formed entries are still checked."""
    good = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1,
            "digest": "sha256:" + "1" * 64, "platform": {"os": "linux", "architecture": "amd64"}}
    bad = [dict(good, digest="sha256:" + "2" * 64, platform={"os": "linux", "architecture": "amd64", "variant": "8"}),
           dict(good, digest="sha256:" + "3" * 64, platform={"os": "linux", "architecture": "amd64", "variant": 8}),
           dict(good, digest="sha256:" + "4" * 64, platform={"os": 1, "architecture": "amd64"}),
           dict(good, digest="sha256:" + "5" * 64, size="1")]
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "manifests": [good] + bad}))
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1, proc.stdout
    for n in (2, 3, 4, 5):
        assert f"error: #{n} (sha256:{str(n) * 12}): malformed descriptor: " in proc.stdout, proc.stdout
    assert "error: #1 " not in proc.stdout


def test_validate_warnings_and_json(tmp_path):
    no_platform = desc(3)
    del no_platform["platform"]
    f = write_index(tmp_path, [desc(1, cpu_target="zen4"), desc(2, cpu_target="zen4"), no_platform])
    proc = run_compat("validate", f, "--json")
    doc = json.loads(proc.stdout)
    assert proc.returncode == 1 and doc["errors"] == 0 and doc["warnings"] == 3
    msgs = [p["message"] for p in doc["problems"]]
    assert any(m.startswith("same platform and annotations as #1") for m in msgs)
    assert any(m.startswith("no platform: Charliecloud refuses") for m in msgs)
    assert any(m.startswith("no generic baseline") for m in msgs)


def test_validate_variants_file(tmp_path):
    f = tmp_path / "v.json"
    f.write_text(json.dumps({"variants": [{"ref": "r/a:1", "annotations": {"cpu.target": "zen4"}},
                                          {"ref": "r/a:2", "annotations": {"gpu.cuda.arch": "sm_9x"}}]}))
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1
    assert "error: #2 (r/a:2): org.hpc-compat.gpu.cuda.arch: 'sm_9x'" in proc.stdout


def test_validate_unreadable_things_are_bad_input(tmp_path):
    f = tmp_path / "x.json"
    f.write_text("{not json")
    assert run_compat("validate", str(f)).returncode == 2
    assert run_compat("validate", "oci:/nonexistent/layout").returncode == 2


# -- NFD artifacts ---------------------------------------------------------------------------------

NFD_TYPE = "application/vnd.nfd.image-compatibility.v1alpha1"


def test_nfd_spec_translation():
    from compat.author.nfd import spec_for
    spec = spec_for({P + "cpu.target": "x86_64_v3", P + "cpu.features": "avx2,fma,avx512_bf16",
                     P + "fabric": "infiniband,efa", P + "os.kernel": ">=5.10,<7", P + "weight": "7",
                     P + "mpi.implementation": "openmpi", P + "gpu.cuda.arch": "sm_90"}, "t")
    assert spec["version"] == "v1alpha1"
    s = spec["compatibilities"][0]
    assert s["weight"] == 7 and s["tag"] == "t"
    cpu = s["rules"][0]["matchFeatures"]
    assert cpu[0] == {"feature": "cpu.cpuid", "matchExpressions": {"X86_64_V3": {"op": "Exists"}}}
    assert set(cpu[1]["matchExpressions"]) == {"AVX2", "FMA3", "AVX512BF16"}
    fabric = [r for r in s["rules"] if r["name"] == "compat fabric"][0]
    assert len(fabric["matchAny"]) == 2                        # alternatives
    kernel = [r["name"] for r in s["rules"] if r["name"].startswith("compat kernel")]
    assert sorted(kernel) == ["compat kernel <7", "compat kernel >=5.10"]    # outcomes: test_nfd_authoring.py
    assert "mpi.implementation" in s["description"] and "gpu.cuda.arch" in s["description"]


@need_registry
@need_skopeo
def test_nfd_artifacts_attached_through_the_referrers_tag(images, tmp_path):
    from compat.author.nfd import SPEC_MEDIA_TYPE
    src, digests = images
    with registry_with_variants(src, tmp_path / "reg", ["generic", "zen4"]) as reg:
        args = ["annotate", f"{reg.host}/hpc/app:2024", "--nfd", "--variant", f"{reg.host}/hpc/app:generic",
                "--variant", f"{reg.host}/hpc/app:zen4", "cpu.target=zen4"]
        run_compat(*args, env={"SOURCE_DATE_EPOCH": "1767225600"}, check=0)
        tag = "sha256-" + digests["zen4"][7:]
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/hpc/app:{tag}"],
                             capture_output=True, text=True, check=True).stdout
        refs = json.loads(raw)["manifests"]
        assert len(refs) == 1 and refs[0]["artifactType"] == NFD_TYPE
        assert refs[0]["annotations"]["org.opencontainers.image.created"] == "2026-01-01T00:00:00Z"
        man = json.loads(subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false",
                                         f"docker://{reg.host}/hpc/app@{refs[0]['digest']}"],
                                        capture_output=True, text=True, check=True).stdout)
        assert man["subject"]["digest"] == digests["zen4"] and man["layers"][0]["mediaType"] == SPEC_MEDIA_TYPE
        # a re-run attaches nothing new
        run_compat(*args, check=0)
        raw = subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reg.host}/hpc/app:{tag}"],
                             capture_output=True, text=True, check=True).stdout
        assert len(json.loads(raw)["manifests"]) == 1


def test_nfd_artifacts_in_a_layout(images, tmp_path):
    import yaml
    src, digests = images
    run_compat("annotate", f"oci:{tmp_path}/n:1", "--nfd", "--variant", f"oci:{src}:generic",
               "--variant", f"oci:{src}:cuda12.4", "gpu.cuda.version=12.4", check=0)
    top = json.load(open(tmp_path / "n" / "index.json"))["manifests"]
    arts = [d for d in top if d.get("artifactType") == NFD_TYPE]
    assert len(arts) == 2
    for a in arts:
        man = json.load(open(tmp_path / "n" / "blobs" / "sha256" / a["digest"][7:]))
        if man["subject"]["digest"] == digests["cuda12.4"]:
            spec = yaml.safe_load(open(tmp_path / "n" / "blobs" / "sha256" / man["layers"][0]["digest"][7:]))
            rule = spec["compatibilities"][0]["rules"][0]
            assert rule["matchFeatures"][0]["matchExpressions"]["vendor"] == {"op": "In", "value": ["10de"]}
    # the layout still reads as before: the tag names the index
    assert run_compat("select", f"oci:{tmp_path}/n:1", "--format", "digest",
                      "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"), check=0).stdout.strip() == digests["cuda12.4"]
