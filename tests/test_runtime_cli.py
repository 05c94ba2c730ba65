"""`--runtime` and the runtime keys through the CLI and the API: one index, selected differently
for Apptainer and Podman; `--format` naming the runtime; `--explain` showing it; malformed
values excluded with their reason; `validate` reading the keys (spec/cli.md, spec/vocabulary.md)."""
import hashlib
import json
import os

import pytest

import compat
from cli_support import cli
from compat.host.profile import Rootless, Runtime
from conftest import HOSTS, run_compat

P = "org.hpc-compat."
MANIFEST = "application/vnd.oci.image.manifest.v1+json"
AMD64 = {"os": "linux", "architecture": "amd64"}
APPT = Runtime("apptainer", "1.3.4", setuid=True, allow_setuid=True)
PODMAN = Runtime("podman", "4.3.1")
OPEN = Rootless(user="alice", max_user_namespaces=1000, userns=True, subuid=True, subgid=True, fuse=True,
                fuse_helpers=("squashfuse_ll", "fuse-overlayfs"), overlay=True)

#: (name in the layout, annotations): a baseline, an Apptainer build mounted with FUSE, a Podman
#: build, one that needs setuid Apptainer, and one whose runtime value is malformed
VARIANTS = [("generic", {}),
            ("apptainer", {P + "runtime": "apptainer>=1.3,<2", P + "runtime.needs": "fuse,userns"}),
            ("podman", {P + "runtime": "podman>=4", P + "runtime.needs": "fakeroot"}),
            ("suid", {P + "runtime": "apptainer", P + "runtime.needs": "setuid"}),
            ("broken", {P + "runtime": "apptainer>=five"})]


def digest_of(name):
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def write_layout(root, variants=VARIANTS):
    """``oci:ROOT:latest``: an index of ``variants`` (blobs of the children are not needed to
    select), each child also listed and named in index.json (what the apptainer and podman
    forms of a layout reference name)."""
    os.makedirs(os.path.join(root, "blobs", "sha256"))
    with open(os.path.join(root, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)
    descs = [{"mediaType": MANIFEST, "digest": digest_of(n), "size": 10, "platform": AMD64,
              "annotations": dict(ann, **{P + "description": n})} for n, ann in variants]
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descs}).encode()
    digest = hashlib.sha256(index).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as fh:
        fh.write(index)
    named = [{"mediaType": MANIFEST, "digest": digest_of(n), "size": 10,
              "annotations": {"org.opencontainers.image.ref.name": n}} for n, _ in variants]
    with open(os.path.join(root, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + digest,
             "size": len(index), "annotations": {"org.opencontainers.image.ref.name": "latest"}}] + named}, fh)
    return f"oci:{root}:latest"


@pytest.fixture(scope="module")
def laptop():
    return compat.detect(sysroot=os.path.join(HOSTS, "laptop-tigerlake"))


def profile(tmp_path, laptop, runtimes=(APPT, PODMAN), rootless=OPEN):
    path = tmp_path / "node.json"
    path.write_text(json.dumps(laptop._replace(runtimes=runtimes, rootless=rootless).to_dict()))
    return str(path)


@pytest.fixture
def layout(tmp_path):
    return write_layout(str(tmp_path / "layout"))


def chosen(capsys, *argv):
    code, out, err = cli(capsys, "select", *argv, "--format", "digest", "--no-referrers")
    assert code == 0, err
    return [n for n, _ in VARIANTS if digest_of(n) == out.strip()][0]


@pytest.mark.parametrize("runtime, expected", [("apptainer", "apptainer"), ("podman", "podman"),
                                               ("singularity-ce", "generic"), ("enroot", "generic")])
def test_one_index_selected_for_each_runtime(capsys, tmp_path, laptop, layout, runtime, expected):
    assert chosen(capsys, layout, "--host", profile(tmp_path, laptop), "--runtime", runtime) == expected


def test_setuid_apptainer_runs_the_setuid_variant(capsys, tmp_path, laptop, layout):
    """Both Apptainer builds run: as many requirements each, the first in the index wins; without
    user namespaces only the setuid build runs, and not where apptainer.conf forbids setuid."""
    node = profile(tmp_path, laptop)
    assert chosen(capsys, layout, "--host", node, "--runtime", "apptainer") == "apptainer"
    no_userns = profile(tmp_path, laptop, rootless=OPEN._replace(userns=False, max_user_namespaces=0))
    assert chosen(capsys, layout, "--host", no_userns, "--runtime", "apptainer") == "suid"
    conf_no = profile(tmp_path, laptop, runtimes=(APPT._replace(allow_setuid=False),),
                      rootless=OPEN._replace(userns=False, max_user_namespaces=0))
    assert chosen(capsys, layout, "--host", conf_no, "--runtime", "apptainer") == "generic"


def test_the_format_names_the_runtime(capsys, tmp_path, laptop, layout):
    node = profile(tmp_path, laptop)
    root = layout[len("oci:"):-len(":latest")]
    code, out, _ = cli(capsys, "select", layout, "--host", node, "--format", "apptainer", "--no-referrers")
    assert code == 0 and out.strip() == f"oci:{root}@{digest_of('apptainer')}"
    code, out, _ = cli(capsys, "select", layout, "--host", node, "--format", "podman", "--no-referrers")
    assert code == 0 and out.strip() == f"oci:{root}:podman"
    # --runtime wins over the host's order; the format of a runtime that pulls it is fine
    code, out, _ = cli(capsys, "select", layout, "--host", node, "--format", "apptainer", "--runtime", "singularity",
                       "--no-referrers")
    assert code == 0 and out.strip() == f"oci:{root}@{digest_of('generic')}"


def test_without_runtime_or_format_the_host_first_runtime_runs_it(capsys, tmp_path, laptop, layout):
    assert chosen(capsys, layout, "--host", profile(tmp_path, laptop, runtimes=(PODMAN, APPT))) == "podman"
    assert chosen(capsys, layout, "--host", profile(tmp_path, laptop, runtimes=(APPT, PODMAN))) == "apptainer"


def test_no_runtime_known_leaves_the_runtime_variants_unknown(capsys, tmp_path, laptop, layout):
    node = profile(tmp_path, laptop, runtimes=None, rootless=None)
    code, out, _ = cli(capsys, "select", layout, "--host", node, "--explain", "--no-referrers")
    assert code == 0
    assert " with " not in [line for line in out.splitlines() if line.startswith("select")][0]
    assert out.count("why: runtime: unknown: runtime (name it with --runtime NAME, or --format "
                     "apptainer|podman|enroot)") == 3
    assert f"pinned   {layout[:-len(':latest')]}@{digest_of('generic')}" in out


def test_explain_shows_the_runtime_and_why_each_variant_fails(capsys, tmp_path, laptop, layout):
    code, out, _ = cli(capsys, "select", layout, "--host", profile(tmp_path, laptop), "--runtime", "podman",
                       "--explain", "--no-referrers")
    assert code == 0
    assert [line for line in out.splitlines() if line.startswith("select")][0].endswith(" with podman 4.3.1")
    assert "; podman 4.3.1 >=4; fakeroot (user namespaces, subuid and subgid ranges)\n" in out
    assert "why: runtime: runs with apptainer>=1.3,<2; the image would run with podman" in out
    assert "why: runtime: runs with apptainer; the image would run with podman" in out
    assert f"why: {P}runtime: 'apptainer>=five' is not a runtime name with an optional version range" in out


def test_malformed_values_are_excluded_with_their_reason(capsys, tmp_path, laptop, layout):
    code, out, _ = cli(capsys, "select", layout, "--host", profile(tmp_path, laptop), "--json", "--no-referrers")
    assert code == 0
    by = {c["description"]: c for c in json.loads(out)["candidates"]}
    assert by["broken"]["verdict"] == "error"
    assert by["broken"]["reason"] == (f"{P}runtime: 'apptainer>=five' is not a runtime name with an optional "
                                      f"version range (apptainer>=1.3,<2, podman) ({digest_of('broken')})")
    assert by["apptainer"]["rank"] == 1
    assert {"dimension": "runtime", "ok": True, "reason": "apptainer 1.3.4 >=1.3,<2; FUSE (squashfuse_ll); "
                                                          "user namespaces"} in by["apptainer"]["checks"]


def test_nothing_runs_lists_the_runtime_reasons(capsys, tmp_path, laptop):
    layout = write_layout(str(tmp_path / "l"), VARIANTS[1:3])
    code, _, err = cli(capsys, "select", layout, "--host", profile(tmp_path, laptop), "--runtime", "enroot",
                       "--no-referrers")
    assert code == 3
    assert "incompatible: runtime: runs with apptainer>=1.3,<2; the image would run with enroot" in err
    assert "incompatible: runtime: runs with podman>=4; the image would run with enroot" in err


@pytest.mark.parametrize("argv, message", [
    (["--runtime", "rkt"], "argument --runtime: 'rkt' is not a container runtime (apptainer, singularity, podman"),
    (["--runtime", "podman", "--format", "apptainer"],
     "--runtime podman does not pull what --format apptainer prints"),
    (["--runtime", "apptainer", "--format", "enroot"], "--runtime apptainer does not pull what --format enroot prints"),
    (["--runtime", "\x1b[31mapp\ntainer"], "'\\x1b[31mapp\\ntainer' is not a container runtime"),
])
def test_runtime_slips_are_usage_errors(capsys, layout, argv, message):
    code, _, err = cli(capsys, "select", layout, *argv, "--sysroot", os.path.join(HOSTS, "laptop-tigerlake"))
    assert code == 2 and message in err, err
    assert "\x1b" not in err


def test_check_takes_the_runtime_too(capsys, tmp_path, laptop, layout):
    code, out, _ = cli(capsys, "check", layout, "--host", profile(tmp_path, laptop), "--runtime", "podman",
                       "--json", "--no-referrers")
    assert code == 0
    rows = {c["description"]: c for c in json.loads(out)["candidates"]}
    assert rows["podman"]["verdict"] == "compatible" and rows["apptainer"]["verdict"] == "incompatible"


def test_the_api_takes_the_runtime(tmp_path, laptop, layout):
    host = laptop._replace(runtimes=(APPT, PODMAN), rootless=OPEN)
    sel = compat.select(layout, host=host, runtime="pyxis", referrers=False)
    assert sel.digest == digest_of("generic") and sel.runtime == Runtime("enroot")
    assert compat.select(layout, host=host, runtime="podman", referrers=False).digest == digest_of("podman")
    assert compat.select(layout, host=host, referrers=False).runtime == APPT
    with pytest.raises(compat.errors.BadInput, match="'rkt' is not a container runtime"):
        compat.select(layout, host=host, runtime="rkt")


def test_validate_reads_the_runtime_keys(tmp_path):
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": [{"mediaType": MANIFEST, "digest": digest_of(n), "size": 10,
                                            "platform": AMD64, "annotations": ann} for n, ann in VARIANTS[:4]]}))
    proc = run_compat("validate", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    f.write_text(f.read_text().replace('"fuse,userns"', '"fuse,root"'))
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1
    assert f"{P}runtime.needs: 'root' is not one of userns, fakeroot, fuse, setuid" in proc.stdout


def test_a_variants_file_takes_the_runtime_keys_as_lists():
    from compat.author.variants import check
    variants, _, _, problems = check({"index": "oci:/tmp/x:1", "variants": [
        {"ref": "oci:/tmp/src:generic"},
        {"ref": "oci:/tmp/src:sif", "annotations": {"runtime": ["apptainer>=1.3,<2", "singularity-ce"],
                                                    "runtime.needs": ["fuse", "userns"]}}]})
    assert problems == []
    ann = variants[1].annotations
    assert ann[P + "runtime"] == "apptainer>=1.3,<2,singularity-ce" and ann[P + "runtime.needs"] == "fuse,userns"
    assert compat.vocab.annotations.parse(ann).values["runtime"] == (("apptainer", ">=1.3,<2"), ("singularity", ""))


CAPTURE = os.path.join(HOSTS, "apptainer-ubuntu2404")


def test_a_captured_node_selects_per_runtime(capsys, layout):
    """Facts read from a capture (nothing run) decide: AppArmor restricts user namespaces and the
    starter is not setuid, so only the baseline runs, until the site states that Apptainer's own
    AppArmor profile allows namespaces."""
    args = ["--sysroot", CAPTURE]
    code, out, err = cli(capsys, "select", layout, *args, "--format", "apptainer", "--explain", "--no-referrers")
    assert code == 0 and out.strip().endswith(digest_of("generic"))
    assert "AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns = 1)" in err
    assert "needs apptainer installed setuid root; its starter is not" in err
    assert chosen(capsys, layout, *args, "--runtime", "apptainer", "--assume", "userns=yes") == "apptainer"
    assert chosen(capsys, layout, *args, "--runtime", "enroot", "--assume", "userns=yes") == "generic"
