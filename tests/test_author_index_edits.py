"""One numbering for what users type and read (#1 is the first descriptor), a generic
baseline defined by its requirements, and --infer naming each image once."""
import json
import re
import sys

import pytest

from conftest import FIXTURES, run_compat
from helpers import run_hostile

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

from helpers import P  # noqa: E402


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("edits")
    return str(d / "src"), build_variant_images(str(d / "src"))


@pytest.fixture()
def three(src, tmp_path):
    layout, digests = src
    ref = f"oci:{tmp_path}/app:1"
    run_compat("annotate", ref, "--variant", f"oci:{layout}:generic", "--variant", f"oci:{layout}:zen3",
               "cpu.target=zen3", "--variant", f"oci:{layout}:zen4", "cpu.target=zen4", check=0)
    return ref, digests


def annotations_after(ref, *args):
    doc = json.loads(run_compat("annotate", ref, *args, "--dry-run", check=0).stdout)
    return [m.get("annotations", {}) for m in doc["manifests"]]


def test_set_position_counts_from_one(three):
    ref, _ = three
    assert annotations_after(ref, "--set", "#1", "weight=1") == [
        {P + "weight": "1"}, {P + "cpu.target": "zen3"}, {P + "cpu.target": "zen4"}]
    assert annotations_after(ref, "--set", "#3", "weight=3")[2] == {P + "cpu.target": "zen4", P + "weight": "3"}
    assert annotations_after(ref, "--unset", "#2", "cpu.target")[1] == {}


def test_set_position_is_the_number_validate_and_explain_print(three):
    """The #N validate prints for a descriptor is the #N that --set edits and the entry
    --explain and check show for it (its rank is another number)."""
    ref, digests = three
    proc = run_compat("annotate", ref, "--set", "#3", "cpu.target=zen99")
    assert proc.returncode == 1
    assert re.search(rf"error: #3 \({digests['zen4'][:19]}\): {P}cpu.target: 'zen99'", proc.stderr), proc.stderr
    explain = run_compat("select", ref, "--explain", "--assume", "cpu.target=zen4", check=0).stdout
    row1 = [ln for ln in explain.splitlines() if ln.startswith("1 ")][0]
    assert digests["zen4"][7:19] in row1 and row1.split()[1] == "#3"     # rank 1, entry #3
    check = run_compat("check", ref, "--assume", "cpu.target=zen4", check=0).stdout
    assert f"CANDIDATE #3 {digests['zen4'][:19]}" in check
    assert annotations_after(ref, "--set", digests["zen4"][:19], "weight=1") == \
        annotations_after(ref, "--set", "#3", "weight=1")


@pytest.mark.parametrize("selector,message", [
    ("#0", "selector #0: positions count from #1 (the first descriptor)"),
    ("#4", "selector #4: the index has 3 descriptor(s), #1 to #3"),
    ("#99999999999999999999", "selector '#99999999999999999999': expected all, #N"),
])
def test_set_position_zero_and_out_of_range_are_clear_errors(three, selector, message):
    ref, _ = three
    proc = run_hostile("annotate", ref, "--set", selector, "weight=1")
    assert proc.returncode == 2 and message in proc.stderr


def test_help_says_positions_count_from_one():
    out = run_compat("annotate", "--help", check=0).stdout
    assert "#N (position, counting from #1" in " ".join(out.split())


def test_set_all_edits_image_entries_only():
    from compat.author.annotate import select_descriptors
    image = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "1" * 64, "size": 1,
             "platform": {"os": "linux", "architecture": "amd64"}}
    attestation = dict(image, digest="sha256:" + "2" * 64, platform={"os": "unknown", "architecture": "unknown"})
    nested = dict(image, digest="sha256:" + "3" * 64, mediaType="application/vnd.oci.image.index.v1+json")
    assert select_descriptors({"manifests": [image, attestation, nested, image]}, "all") == [0, 3]
    assert select_descriptors({"manifests": [image, attestation]}, "#2") == [1]   # named: lint says why not


# -- the generic baseline is defined by its requirements -----------------------------------------

def test_description_on_the_baseline_keeps_it_generic(src, tmp_path):
    layout, _ = src
    ref = f"oci:{tmp_path}/app:1"
    proc = run_compat("annotate", ref, "--variant", f"oci:{layout}:generic", "description=portable build",
                      "weight=-1", "--variant", f"oci:{layout}:zen4", "cpu.target=zen4", check=0)
    assert "warning" not in proc.stderr
    assert run_compat("validate", ref).returncode == 0


def write_index(tmp_path, *annotation_sets):
    manifests = []
    for n, ann in enumerate(annotation_sets, 1):
        d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + f"{n:x}" * 64,
             "size": 10, "platform": {"os": "linux", "architecture": "amd64"}}
        if ann:
            d["annotations"] = {P + k: v for k, v in ann.items()}
        manifests.append(d)
    f = tmp_path / "index.json"
    f.write_text(json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                             "manifests": manifests}))
    return str(f)


@pytest.mark.parametrize("ann,baseline", [
    ({"description": "generic"}, True),
    ({"weight": "-3", "description": "x"}, True),
    ({"fabric.providers": "tcp,shm", "libc.glibc": "2.28"}, True),
    ({"gpu.vendor": "none"}, True),
    ({"fabric": "infiniband,tcp"}, True),                      # tcp is always present
    ({"mpi.implementation": "openmpi", "mpi.version": "4.1"}, True),   # no mode: ranks only
    ({"mpi.implementation": "openmpi", "mpi.mode": "none"}, True),
    ({"cpu.target": "x86_64"}, False),
    ({"os.kernel": ">=3.10"}, False),
    ({"fabric": "infiniband"}, False),
    ({"mpi.implementation": "openmpi", "mpi.mode": "hybrid"}, False),
    ({"gpu.vendor": "nvidia"}, False),
    ({"description": "x", "gpu.colour": "red"}, False),         # an unknown key is not "no requirement"
])
def test_baseline_is_an_entry_whose_requirements_exclude_no_host(tmp_path, ann, baseline):
    f = write_index(tmp_path, ann, {"cpu.target": "zen4"})
    out = run_compat("validate", f).stdout
    assert ("no generic baseline" not in out) == baseline, out


def test_a_baseline_with_a_description_after_a_tuned_entry_is_still_not_first(tmp_path):
    f = write_index(tmp_path, {"cpu.target": "zen4"}, {"description": "portable"})
    out = run_compat("validate", f).stdout
    assert "the generic baseline is #2 (sha256:222222222222) but #1 (sha256:111111111111) comes first" in out


# -- --infer names each image once ------------------------------------------------------------------

def test_infer_prints_each_digest_once(three, src):
    ref, digests = three
    out = run_compat("annotate", ref, "--infer", check=0).stdout
    heads = [ln for ln in out.splitlines() if "files of interest" in ln]
    assert [h.split(":")[0] for h in heads] == ["#1 (sha256", "#2 (sha256", "#3 (sha256"]
    for head, name in zip(heads, ["generic", "zen3", "zen4"]):
        assert head.count("sha256:") == 1 and digests[name][:19] in head
    layout, _ = src
    out = run_compat("annotate", f"{ref}x", "--infer", "--variant", f"oci:{layout}:generic", check=0).stdout
    head = [ln for ln in out.splitlines() if "files of interest" in ln][0]
    assert head.startswith(f"#1 (oci:{layout}:generic) {digests['generic'][:19]}: ") and head.count("sha256:") == 1
