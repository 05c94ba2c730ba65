"""--format prints what each runtime accepts for the source, or refuses with the reason
(spec/cli.md, "--format"). Checked with the real skopeo where it is installed (podman and
skopeo share containers/image's transports)."""
import hashlib
import json
import os
import shutil
import subprocess

import pytest

from cli_support import cli
from conftest import FIXTURES, HOSTS

DEMO = os.path.join(FIXTURES, "demo")
LAPTOP = ["--sysroot", os.path.join(HOSTS, "laptop-tigerlake"), "--no-referrers"]
SKOPEO = shutil.which("skopeo")
needs_skopeo = pytest.mark.skipif(SKOPEO is None, reason="skopeo not installed")


def selected(capsys, ref):
    code, out, _ = cli(capsys, "select", ref, "--format", "digest", *LAPTOP)
    assert code == 0
    return out.strip()


def skopeo_raw(ref, *extra):
    """The manifest bytes skopeo reads for REF (the runtime's own parser decides)."""
    proc = subprocess.run([SKOPEO, "inspect", "--raw", *extra, ref], capture_output=True, timeout=60)
    assert proc.returncode == 0, proc.stderr.decode()[-500:]
    return proc.stdout


@pytest.fixture
def tagged_layout(tmp_path):
    """A copy of the demo layout (the test lists the selected child in its index.json by name,
    what `skopeo copy ... oci:DIR:laptop` of that image leaves)."""
    root = tmp_path / "demo"
    shutil.copytree(DEMO, root)
    return root


@needs_skopeo
def test_skopeo_cannot_read_the_layout_digest_form(capsys):
    """Why --format podman does not print oci:DIR@sha256:…: containers/image reads the
    directory DIR@sha256 (the bug this guards against)."""
    digest = selected(capsys, f"oci:{DEMO}")
    proc = subprocess.run([SKOPEO, "inspect", "--raw", f"oci:{DEMO}@{digest}"], capture_output=True, timeout=60)
    assert proc.returncode != 0 and b"no such file" in proc.stderr


@pytest.mark.parametrize("fmt,needle", [
    ("podman", "org.opencontainers.image.ref.name"),
    ("apptainer", "nested index"),
    ("enroot", "enroot cannot import from an OCI layout"),
])
def test_layout_formats_a_runtime_cannot_take_are_refused(capsys, fmt, needle):
    code, out, err = cli(capsys, "select", f"oci:{DEMO}", "--format", fmt, *LAPTOP)
    assert code == 2 and out == "" and needle in err and "registry" in err


@needs_skopeo
def test_podman_format_names_a_tagged_layout_entry_that_skopeo_reads(capsys, tagged_layout):
    digest = selected(capsys, f"oci:{tagged_layout}")
    top = json.load(open(tagged_layout / "index.json"))
    blob = (tagged_layout / "blobs" / "sha256" / digest[7:]).read_bytes()
    top["manifests"].append({"mediaType": json.loads(blob)["mediaType"], "digest": digest, "size": len(blob),
                             "annotations": {"org.opencontainers.image.ref.name": "laptop"}})
    json.dump(top, open(tagged_layout / "index.json", "w"))
    code, out, err = cli(capsys, "select", f"oci:{tagged_layout}:latest", "--format", "podman", *LAPTOP)
    assert code == 0, err
    assert out.strip() == f"oci:{tagged_layout}:laptop"
    assert "sha256:" + hashlib.sha256(skopeo_raw(out.strip())).hexdigest() == digest
    code, out, _ = cli(capsys, "select", f"oci:{tagged_layout}:latest", "--format", "apptainer", *LAPTOP)
    assert code == 0 and out.strip() == f"oci:{tagged_layout}@{digest}"     # an index.json entry: apptainer >= 1.4


def test_layout_ref_and_digest_formats(capsys):
    digest = selected(capsys, f"oci:{DEMO}")
    code, out, _ = cli(capsys, "select", f"oci:{DEMO}", *LAPTOP)
    assert code == 0 and out.strip() == f"oci:{DEMO}@{digest}"
    code, out, _ = cli(capsys, "select", out.strip(), *LAPTOP)       # compat reads its own form back
    assert code == 0 and out.strip() == f"oci:{DEMO}@{digest}"


def test_the_python_api_formats_the_same_way(capsys):
    import compat
    from compat.errors import BadInput
    sel = compat.select(f"oci:{DEMO}", host=compat.detect(sysroot=LAPTOP[1]), referrers=False)
    assert sel.formatted("ref") == f"oci:{DEMO}@{sel.digest}"
    with pytest.raises(BadInput):
        sel.formatted("podman")


@pytest.mark.registry
@needs_skopeo
@pytest.mark.parametrize("fmt", ["podman", "apptainer"])
def test_registry_formats_are_read_by_skopeo(capsys, tmp_path, fmt):
    from registry_harness import DISTRIBUTION, RunningRegistry, push_layout
    if DISTRIBUTION is None:
        pytest.skip("docker-registry (distribution) not installed")
    reg = RunningRegistry(tmp_path / "reg")
    try:
        push_layout(DEMO, reg.host, "hpc/lammps", "2024")
        code, out, err = cli(capsys, "select", f"{reg.host}/hpc/lammps:2024", "--format", fmt, "--plain-http",
                             *LAPTOP)
        assert code == 0, err
        assert out.startswith("docker://")
        raw = skopeo_raw(out.strip(), "--tls-verify=false")
        code, digest, _ = cli(capsys, "select", f"{reg.host}/hpc/lammps:2024", "--format", "digest",
                              "--plain-http", *LAPTOP)
        assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest.strip()
        import compat                                    # the README's scheduler recipe, same answer
        sel = compat.select(f"{reg.host}/hpc/lammps:2024", host=compat.detect(sysroot=LAPTOP[1]),
                            plain_http=True, referrers=False)
        assert sel.formatted(fmt) == out.strip() and sel.to_dict()["selected"] == digest.strip()
    finally:
        reg.stop()
