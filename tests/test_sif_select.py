"""SIF children of an index (spec/oci.md, "SIF children"): candidates with the platform of the
descriptor or of the SIF header, --format apptainer naming them, other runtimes never
handed one, validate's checks. OCI layouts written by ``compat annotate`` from SIFs built by
tests/sif_build.py (mksquashfs) and image variants (fixtures/build_demo.py)."""
import json
import os
import sys

import pytest

from conftest import FIXTURES, HOSTS, run_compat
from compat.oci import media
from compat.oci.digest import blob_path, digest_of

import sif_build

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

pytestmark = sif_build.needs_squashfs
LAPTOP = ["--sysroot", os.path.join(HOSTS, "laptop-tigerlake")]      # linux/amd64, no GPU
#: the runtime dimension (compat/match/runtime.py, issue 15 item 2) excludes a SIF for runtimes
#: that cannot run one; until it is present, --format podman refuses instead (formats.py)


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    d = tmp_path_factory.mktemp("sifparts")
    build_variant_images(str(d / "src"))
    tree = sif_build.app_tree(str(d / "root"))
    sifs = {arch: sif_build.write_sif(str(d / f"app-{arch}.sif"), tree, arch) for arch in ("amd64", "arm64")}
    return str(d / "src"), sifs


def _annotate(out, *variants):
    args = ["annotate", f"oci:{out}:v1"]
    for v in variants:
        args += ["--variant", *v]
    return run_compat(*args, check=0).stdout.strip()


def _index(out):
    with open(os.path.join(out, "index.json")) as fh:
        top = json.load(fh)
    digest = top["manifests"][-1]["digest"]
    with open(blob_path(out, digest, "t")) as fh:
        return json.load(fh)


def _write_index(out, manifests, tag="v2"):
    """A hand-written index (as another tool might write it) over the blobs of ``out``."""
    data = json.dumps({"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": manifests}).encode()
    path = blob_path(out, digest_of(data), "t")
    with open(path, "wb") as fh:
        fh.write(data)
    with open(os.path.join(out, "index.json")) as fh:
        top = json.load(fh)
    top["manifests"].append({"mediaType": media.OCI_INDEX, "digest": digest_of(data), "size": len(data),
                             "annotations": {"org.opencontainers.image.ref.name": tag}})
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump(top, fh)
    return f"oci:{out}:{tag}"


def _put(out, data: bytes) -> str:
    """A blob written into the layout ``out``; its digest."""
    with open(blob_path(out, digest_of(data), "t"), "wb") as fh:
        fh.write(data)
    return digest_of(data)


def _with_layer(out, manifest_digest, layer: bytes):
    """A copy of the SIF artifact ``manifest_digest`` whose layer is ``layer``: (digest, size)."""
    with open(blob_path(out, manifest_digest, "t")) as fh:
        man = json.load(fh)
    man["layers"][0].update(digest=_put(out, layer), size=len(layer))
    data = json.dumps(man).encode()
    return _put(out, data), len(data)


def test_annotate_lists_a_sif_as_the_artifact_apptainer_pushes(parts, tmp_path):
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"], [sifs["arm64"]])
    image, amd, arm = _index(out)["manifests"]
    assert "artifactType" not in image
    assert (amd["artifactType"], amd["platform"], amd["annotations"]) == \
        (media.SIF_CONFIG, {"os": "linux", "architecture": "amd64"}, {"org.hpc-compat.gpu.vendor": "none"})
    assert arm["platform"] == {"os": "linux", "architecture": "arm64"}
    with open(blob_path(out, amd["digest"], "t")) as fh:
        man = json.load(fh)
    assert man["config"] == {"mediaType": media.SIF_CONFIG, "size": 2,
                             "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"}
    (layer,) = man["layers"]
    assert layer["mediaType"] == media.SIF_LAYER
    assert layer["annotations"] == {"org.opencontainers.image.title": "app-amd64.sif"}
    with open(blob_path(out, layer["digest"], "t"), "rb") as fh, open(sifs["amd64"], "rb") as orig:
        assert fh.read() == orig.read()
    # the same files give the same index: a re-run changes nothing
    again = _annotate(str(tmp_path / "again"), [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"],
                      [sifs["arm64"]])
    assert again == _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"], [sifs["arm64"]])


def test_apptainer_gets_the_sif_or_the_image_by_rank(parts, tmp_path):
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"], [sifs["arm64"]])
    ref = f"oci:{out}:v1"
    sif_path = run_compat("select", ref, "--format", "apptainer", *LAPTOP, check=0).stdout.strip()
    with open(sif_path, "rb") as fh, open(sifs["amd64"], "rb") as orig:   # a path apptainer runs
        assert fh.read() == orig.read()
    arm = run_compat("select", ref, "--format", "apptainer", "--platform", "linux/arm64", *LAPTOP, check=0)
    assert open(arm.stdout.strip(), "rb").read() == open(sifs["arm64"], "rb").read()
    # the image first and the SIF without keys: the image wins the tie (apptainer's docker://
    # form for it: test_sif_oras.py; from a layout apptainer cannot name an image in an index)
    out2 = str(tmp_path / "image-first")
    _annotate(out2, [f"oci:{src}:generic", "gpu.vendor=none"], [sifs["amd64"]])
    image = _index(out2)["manifests"][0]["digest"]
    assert run_compat("select", f"oci:{out2}:v1", "--format", "digest", *LAPTOP, check=0).stdout.strip() == image


@pytest.mark.parametrize("fmt", ["podman", "enroot"])
def test_runtimes_that_cannot_run_sif_are_never_handed_one(parts, tmp_path, fmt):
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"])
    image = _index(out)["manifests"][0]["digest"]
    got = run_compat("select", f"oci:{out}:v1", "--format", "digest", "--runtime", fmt, *LAPTOP, check=0)
    assert got.stdout.strip() == image


def test_formats_refuse_a_sif_for_a_runtime_that_cannot_run_it(parts, tmp_path):
    """The last defence (formats.py) whatever chose the digest: exit 2, one line, no oras://."""
    src, sifs = parts
    out = str(tmp_path / "sif-only")
    _annotate(out, [sifs["amd64"]])
    for fmt in ("podman", "enroot"):
        proc = run_compat("select", f"oci:{out}:v1", "--format", fmt, *LAPTOP)
        assert proc.returncode in (2, 3) and proc.stdout == ""
        if proc.returncode == 2:
            assert f"is a SIF (an ORAS artifact): {fmt} cannot run it" in proc.stderr
    ref = run_compat("select", f"oci:{out}:v1", "--runtime", "apptainer", *LAPTOP, check=0).stdout.strip()
    assert ref == f"oci:{out}@{_index(out)['manifests'][0]['digest']}"


def test_platform_and_type_of_a_sif_listed_without_them(parts, tmp_path):
    """Another tool's index: a SIF child with no platform (read from the SIF header), or with
    neither platform nor artifactType (the manifest read to learn it is a SIF)."""
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["arm64"]], [sifs["amd64"]])
    image, arm, amd = _index(out)["manifests"]
    bare_arm = {k: v for k, v in arm.items() if k != "platform"}
    bare_amd = {k: v for k, v in amd.items() if k not in ("platform", "artifactType")}
    ref = _write_index(out, [bare_arm, bare_amd, image])
    doc = json.loads(run_compat("select", ref, "--json", "--runtime", "apptainer", *LAPTOP, check=0).stdout)
    by = {c["digest"]: c for c in doc["candidates"]}
    assert by[arm["digest"]]["platform"] == "linux/arm64" and by[arm["digest"]]["verdict"] == "incompatible"
    assert by[amd["digest"]]["platform"] == "linux/amd64" and doc["selected"] == amd["digest"]
    assert by[amd["digest"]]["artifactType"] == media.SIF_CONFIG and "artifactType" not in by[image["digest"]]
    got = run_compat("select", ref, "--format", "apptainer", *LAPTOP, check=0).stdout.strip()
    assert open(got, "rb").read() == open(sifs["amd64"], "rb").read()
    # an image without a platform stays skipped: compat fetches manifests only to find SIFs
    bare_image = {k: v for k, v in image.items() if k != "platform"}
    ref3 = _write_index(out, [bare_image, amd], tag="v3")
    doc = json.loads(run_compat("select", ref3, "--json", "--runtime", "apptainer", *LAPTOP, check=0).stdout)
    assert doc["candidates"][1]["reason"] == "descriptor has no platform; compat does not guess an architecture"


def test_a_sif_whose_header_does_not_read_is_excluded_with_the_reason(parts, tmp_path):
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"]])
    image, amd = _index(out)["manifests"]
    digest, size = _with_layer(out, amd["digest"], b"#!/bin/sh\n" + b"\0" * 500)
    broken = {"mediaType": media.OCI_MANIFEST, "digest": digest, "size": size, "artifactType": media.SIF_CONFIG}
    ref = _write_index(out, [broken, image])
    doc = json.loads(run_compat("select", ref, "--json", *LAPTOP, check=0).stdout)
    bad = doc["candidates"][1]
    assert bad["verdict"] == "error" and "not a SIF file" in bad["reason"]
    assert doc["selected"] == image["digest"]
    problems = run_compat("validate", ref, "--json")
    assert problems.returncode == 1
    assert any("not a SIF file" in p["message"] for p in json.loads(problems.stdout)["problems"])


def test_validate_checks_sif_children(parts, tmp_path):
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"]])
    assert run_compat("validate", f"oci:{out}:v1").returncode == 0
    image, amd = _index(out)["manifests"]
    wrong_arch = dict(amd, platform={"os": "linux", "architecture": "arm64"})
    untyped = {k: v for k, v in amd.items() if k not in ("platform", "artifactType")}
    ref = _write_index(out, [image, wrong_arch, untyped])
    proc = run_compat("validate", ref, "--json")
    got = [(p["level"], p["location"][:2], p["message"]) for p in json.loads(proc.stdout)["problems"]]
    assert ("error", "#2", "platform says arm64, the SIF header amd64: selection would hand it to the wrong hosts") in got
    assert any(level == "warning" and where == "#3" and "without artifactType" in m for level, where, m in got)
    # a SIF artifact manifest Apptainer would not pull: two layers
    with open(blob_path(out, amd["digest"], "t")) as fh:
        man = json.load(fh)
    man["layers"] *= 2
    data = json.dumps(man).encode()
    two = dict(amd, digest=_put(out, data), size=len(data))
    proc = run_compat("validate", _write_index(out, [image, two], tag="v4"), "--json")
    assert any(p["message"] == "SIF artifact: 2 layers; a SIF artifact has exactly one"
               for p in json.loads(proc.stdout)["problems"])


def test_a_reference_to_one_sif_manifest(parts, tmp_path):
    """``oci:DIR:tag`` naming a SIF artifact itself (what ``apptainer push`` leaves under a tag)."""
    src, sifs = parts
    out = str(tmp_path / "one")
    _annotate(out, [sifs["arm64"]])
    arm = _index(out)["manifests"][0]
    with open(os.path.join(out, "index.json")) as fh:
        top = json.load(fh)
    top["manifests"].append({"mediaType": media.OCI_MANIFEST, "digest": arm["digest"], "size": arm["size"],
                             "annotations": {"org.opencontainers.image.ref.name": "sif"}})
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump(top, fh)
    doc = json.loads(run_compat("select", f"oci:{out}:sif", "--json", "--platform", "linux/arm64", "--runtime", "apptainer", *LAPTOP,
                                check=0).stdout)
    assert doc["candidates"][0]["platform"] == "linux/arm64" and doc["selected"] == arm["digest"]
    assert run_compat("validate", f"oci:{out}:sif").returncode == 0
    # the same tag over a SIF artifact whose header is damaged: validate says so
    digest, size = _with_layer(out, arm["digest"], b"\0" * 4096)
    top["manifests"].append({"mediaType": media.OCI_MANIFEST, "digest": digest, "size": size,
                             "annotations": {"org.opencontainers.image.ref.name": "broken"}})
    with open(os.path.join(out, "index.json"), "w") as fh:
        json.dump(top, fh)
    proc = run_compat("validate", f"oci:{out}:broken")
    assert proc.returncode == 1 and "SIF header: not a SIF file" in proc.stdout


def test_annotate_refuses_a_file_that_is_no_usable_sif(tmp_path):
    junk = tmp_path / "junk.sif"
    junk.write_bytes(b"not a sif at all" * 20)
    proc = run_compat("annotate", f"oci:{tmp_path}/o:1", "--variant", str(junk))
    assert proc.returncode == 2 and "not a SIF file" in proc.stderr and proc.stderr.count("\n") == 1
    empty = tmp_path / "empty.sif"
    empty.write_bytes(open(os.path.join(os.path.dirname(__file__), "data", "sylabs-sif", "empty.sif"), "rb").read())
    proc = run_compat("annotate", f"oci:{tmp_path}/o:1", "--variant", str(empty))
    assert proc.returncode == 2 and "no primary system partition" in proc.stderr


def test_annotate_refuses_a_stated_platform_the_sif_header_contradicts(parts, tmp_path):
    """A variants file's ``platform:`` (or a SIF already in a layout named with --variant
    and a platform) that is not the header's: validate would call it an error, so annotate
    pushes nothing (exit 1), for a SIF file and for a SIF artifact by reference alike."""
    src, sifs = parts
    vf = tmp_path / "v.yaml"
    vf.write_text(f"variants:\n  - ref: {sifs['amd64']}\n    platform: {{os: linux, architecture: arm64}}\n")
    out = tmp_path / "o"
    proc = run_compat("annotate", f"oci:{out}:v1", "--variants", str(vf))
    assert proc.returncode == 1 and "nothing was pushed" in proc.stderr
    assert "platform says arm64, the SIF header amd64" in proc.stderr and not out.exists()
    # the same SIF pushed first, then named by reference with the wrong platform
    _annotate(str(tmp_path / "one"), [sifs["amd64"]])
    amd = _index(str(tmp_path / "one"))["manifests"][0]
    vf.write_text(f"variants:\n  - ref: oci:{tmp_path}/one@{amd['digest']}\n    platform: {{os: linux, architecture: arm64}}\n")
    proc = run_compat("annotate", f"oci:{out}:v1", "--variants", str(vf))
    assert proc.returncode == 1 and "platform says arm64, the SIF header amd64" in proc.stderr
    vf.write_text(f"variants:\n  - ref: {sifs['amd64']}\n    platform: {{os: linux, architecture: amd64}}\n")
    run_compat("annotate", f"oci:{out}:v1", "--variants", str(vf), check=0)


def test_a_sif_listed_with_a_platform_but_no_artifact_type(parts, tmp_path):
    """Another tool's index lists a SIF with its platform and no ``artifactType``: select
    takes the descriptor at its word (an OCI image: compat reads a manifest only for entries
    with neither, spec/oci.md), so validate, the thorough command, reads every child's
    manifest and calls this an error."""
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"]])
    image, amd = _index(out)["manifests"]
    untyped = {k: v for k, v in amd.items() if k != "artifactType"}
    ref = _write_index(out, [image, untyped])
    proc = run_compat("validate", ref, "--json")
    assert proc.returncode == 1
    got = [(p["level"], p["location"][:2], p["message"]) for p in json.loads(proc.stdout)["problems"]]
    assert any(level == "error" and where == "#2" and "without artifactType" in m and "podman" in m
               for level, where, m in got), got
    # the documented select rule: the entry is read as an image (no extra request per child)
    doc = json.loads(run_compat("select", ref, "--json", "--runtime", "apptainer", *LAPTOP, check=0).stdout)
    assert "artifactType" not in doc["candidates"][1]


def test_validate_does_not_say_compat_skips_a_sif_without_platform(parts, tmp_path):
    """A SIF entry without platform (typed, or with neither platform nor artifactType) is
    selected with the header's platform: validate's no-platform warning says so, and keys on
    it are not "never read"."""
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"], "gpu.vendor=none"], [sifs["arm64"], "gpu.vendor=none"])
    image, amd, arm = _index(out)["manifests"]
    bare_amd = {k: v for k, v in amd.items() if k != "platform"}
    bare_arm = {k: v for k, v in arm.items() if k not in ("platform", "artifactType")}
    bare_image = {k: v for k, v in image.items() if k != "platform"}
    ref = _write_index(out, [image, bare_amd, bare_arm, bare_image])
    doc = json.loads(run_compat("select", ref, "--json", "--runtime", "apptainer", *LAPTOP, check=0).stdout)
    assert doc["selected"] == amd["digest"]
    problems = json.loads(run_compat("validate", ref, "--json").stdout)["problems"]
    at = {}
    for p in problems:
        at.setdefault(p["location"][:2], []).append(p["message"])
    for where in ("#2", "#3"):
        msgs = " | ".join(at[where])
        assert "from the SIF header" in msgs and "compat skips it" not in msgs and "never read" not in msgs, msgs
    assert any("compat skips it" in m for m in at["#4"])           # an image without platform stays skipped


def test_validate_reports_what_annotate_refuses_in_a_sif_header(parts, tmp_path):
    """A SIF artifact whose header names no architecture (the descriptor says amd64), or has
    two primary partitions: errors, as annotate refuses the same files."""
    src, sifs = parts
    out = str(tmp_path / "mixed")
    _annotate(out, [f"oci:{src}:generic"], [sifs["amd64"]])
    image, amd = _index(out)["manifests"]
    for layer, message in [
            (sif_build.sif([(b"x" * 10, "squashfs", "primary", "")], header_arch=""),
             "no architecture in the SIF header or its primary partition"),
            (sif_build.sif([(b"x", "squashfs", "primary", "amd64"), (b"y", "squashfs", "primary", "arm64")]),
             "2 primary system partitions (amd64, arm64)")]:
        digest, size = _with_layer(out, amd["digest"], layer)
        ref = _write_index(out, [image, dict(amd, digest=digest, size=size)], tag=f"t{len(message)}")
        proc = run_compat("validate", ref, "--json")
        assert proc.returncode == 1
        assert any(p["level"] == "error" and message in p["message"]
                   for p in json.loads(proc.stdout)["problems"]), proc.stdout
        path = tmp_path / "f.sif"
        path.write_bytes(layer)
        proc = run_compat("annotate", f"oci:{tmp_path}/o:1", "--variant", str(path), "--dry-run")
        assert proc.returncode == 2 and message in proc.stderr
