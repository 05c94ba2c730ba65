"""SIF variants through a real registry (Debian's docker-registry on 127.0.0.1) with oras-py,
the ORAS Python SDK, as the independent client: ``compat annotate --variant app.sif`` pushes,
oras-py pulls back by the pinned digest, byte for byte; a SIF pushed by oras-py the way
``apptainer push oras://`` pushes it becomes a variant (its platform read from the SIF header
over HTTP); a mixed index (OCI images pushed by skopeo, SIFs) selected for apptainer
(``oras://`` or ``docker://``, per the keys) and for podman."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import FIXTURES, HOSTS, run_compat
from compat.oci import media
from registry_harness import DISTRIBUTION, RunningRegistry

import sif_build

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

oras_provider = pytest.importorskip("oras.provider", reason="oras-py (the 'test' extra) not installed")
pytestmark = [sif_build.needs_squashfs,
              pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry not installed"),
              pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")]
LAPTOP = ["--sysroot", os.path.join(HOSTS, "laptop-tigerlake")]      # linux/amd64, no GPU


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A registry holding the image variant hpc/app:generic (skopeo) and two SIF files."""
    d = tmp_path_factory.mktemp("sifreg")
    build_variant_images(str(d / "src"))
    tree = sif_build.app_tree(str(d / "root"), {"opt/app/README": b"hello\n" * 1000})
    sifs = {arch: sif_build.write_sif(str(d / f"app-{arch}.sif"), tree, arch) for arch in ("amd64", "arm64")}
    reg = RunningRegistry(str(d / "registry"))
    try:
        subprocess.run(["skopeo", "copy", "--dest-tls-verify=false", f"oci:{d}/src:generic",
                        f"docker://{reg.host}/hpc/app:generic"], check=True, capture_output=True)
        yield reg, sifs, d
    finally:
        reg.stop()


def _oras(reg):
    return oras_provider.Registry(hostname=reg.host, insecure=True)


def _manifest(reg, ref):
    return _oras(reg).get_manifest(ref, allowed_media_type=[media.OCI_INDEX, media.OCI_MANIFEST])


def test_annotate_pushes_sifs_that_oras_pulls_back_byte_for_byte(world, tmp_path):
    reg, sifs, _ = world
    ref = f"{reg.host}/hpc/app:mixed"
    run_compat("annotate", ref, "--variant", f"{reg.host}/hpc/app:generic",
               "--variant", sifs["amd64"], "gpu.vendor=none", "--variant", sifs["arm64"], check=0)
    index = _manifest(reg, ref)
    image, amd, arm = index["manifests"]
    assert (amd["artifactType"], amd["platform"]["architecture"]) == (media.SIF_CONFIG, "amd64")
    assert arm["platform"]["architecture"] == "arm64" and "artifactType" not in image
    pinned = run_compat("select", ref, "--format", "apptainer", *LAPTOP, check=0).stdout.strip()
    assert pinned == f"oras://{reg.host}/hpc/app@{amd['digest']}"
    files = _oras(reg).pull(target=pinned[len("oras://"):], outdir=str(tmp_path / "pulled"))
    assert [os.path.basename(f) for f in files] == ["app-amd64.sif"]
    with open(files[0], "rb") as got, open(sifs["amd64"], "rb") as orig:
        assert got.read() == orig.read()
    manifest = _manifest(reg, pinned[len("oras://"):])
    assert manifest["config"]["mediaType"] == media.SIF_CONFIG
    assert [layer["mediaType"] for layer in manifest["layers"]] == [media.SIF_LAYER]
    assert run_compat("validate", ref).returncode == 0


def test_apptainer_gets_docker_for_an_image_and_podman_never_a_sif(world):
    reg, sifs, _ = world
    ref = f"{reg.host}/hpc/app:image-first"
    run_compat("annotate", ref, "--variant", f"{reg.host}/hpc/app:generic", "gpu.vendor=none",
               "--variant", sifs["amd64"], check=0)
    image = _manifest(reg, ref)["manifests"][0]["digest"]
    got = run_compat("select", ref, "--format", "apptainer", *LAPTOP, check=0).stdout.strip()
    assert got == f"docker://{reg.host}/hpc/app@{image}"
    assert run_compat("select", ref, "--format", "podman", *LAPTOP, check=0).stdout.strip() == \
        f"docker://{reg.host}/hpc/app@{image}"
    # the SIF ranked first: podman is refused it (the runtime rule, where merged, excludes it)
    sif_first = f"{reg.host}/hpc/app:sif-first"
    run_compat("annotate", sif_first, "--variant", f"{reg.host}/hpc/app:generic",
               "--variant", sifs["amd64"], "gpu.vendor=none", check=0)
    proc = run_compat("select", sif_first, "--format", "podman", *LAPTOP)
    assert "oras://" not in proc.stdout
    assert proc.stdout.strip() == f"docker://{reg.host}/hpc/app@{image}" or \
        (proc.returncode == 2 and "podman cannot run it" in proc.stderr)


def test_a_sif_pushed_as_apptainer_pushes_it_becomes_a_variant(world, tmp_path):
    """oras-py pushes the SIF as ``apptainer push oras://`` does (config {} typed SIF_CONFIG,
    one SIF_LAYER layer titled with the file name); annotate reads its platform from the SIF
    header through the registry (the first bytes of the layer, streamed)."""
    reg, sifs, _ = world
    work = tmp_path / "push"
    work.mkdir()
    shutil.copy(sifs["arm64"], work / "app.sif")
    (work / "config.json").write_text("{}")
    cwd = os.getcwd()
    os.chdir(work)                           # oras-py takes files relative to the working directory
    try:
        _oras(reg).push(target=f"{reg.host}/hpc/app:sif-arm64", files=[f"app.sif:{media.SIF_LAYER}"],
                        manifest_config=f"config.json:{media.SIF_CONFIG}")
    finally:
        os.chdir(cwd)
    ref = f"{reg.host}/hpc/app:with-pushed"
    run_compat("annotate", ref, "--variant", f"{reg.host}/hpc/app:generic",
               "--variant", f"{reg.host}/hpc/app:sif-arm64", check=0)
    image, pushed = _manifest(reg, ref)["manifests"]
    assert pushed["artifactType"] == media.SIF_CONFIG
    assert pushed["platform"] == {"os": "linux", "architecture": "arm64"}
    got = run_compat("select", ref, "--format", "apptainer", "--platform", "linux/arm64", *LAPTOP, check=0)
    assert got.stdout.strip() == f"oras://{reg.host}/hpc/app@{pushed['digest']}"
    # the tag itself (one SIF manifest, no index): its platform from the header too
    one = json.loads(run_compat("select", f"{reg.host}/hpc/app:sif-arm64", "--json", "--platform", "linux/arm64", "--runtime", "apptainer",
                                *LAPTOP, check=0).stdout)
    assert one["candidates"][0]["platform"] == "linux/arm64"
