"""compat/oci/sif.py: the SIF header and descriptor table. Vectors: sylabs/sif's own test
images (test/images/*.sif at 4c44215, BSD-3-Clause, Sylabs Inc.; copied unchanged into
tests/data/sylabs-sif/) with what sylabs/sif's siftool prints for them (its golden files
TestApp_Header/*, TestApp_List/*); SIFs built by tests/sif_build.py around mksquashfs images;
hostile bytes."""
import os
import struct

import pytest
from hypothesis import given, settings, strategies as st

from compat import limits
from compat.errors import BadInput
from compat.oci import sif

import sif_build
from helpers import run_hostile

DATA = os.path.join(os.path.dirname(__file__), "data", "sylabs-sif")


def _load(name):
    with open(os.path.join(DATA, name), "rb") as fh:
        data = fh.read()
    return sif.parse(data, len(data), name), data


# siftool header/list goldens: (version, primary arch, free, total, descriptors offset,
# data offset, [(id, group, start, end, fs, kind, arch)])
GOLDEN = {
    "empty.sif": ("01", "", 48, 48, 4096, 32176, []),
    "one-object-generic-json.sif": ("01", "", 47, 48, 4096, 32176, []),
    "one-group.sif": ("01", "386", 46, 48, 4096, 32176,
                      [(1, 1, 32768, 32772, "raw", "system", "386"),
                       (2, 1, 36864, 40960, "squashfs", "primary", "386")]),
    "two-groups.sif": ("01", "386", 45, 48, 4096, 32176,
                       [(1, 1, 32768, 32772, "raw", "system", "386"),
                        (2, 1, 36864, 40960, "squashfs", "primary", "386"),
                        (3, 2, 40960, 303104, "ext3", "system", "amd64")]),
}


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_sylabs_images_read_as_siftool_prints_them(name):
    s, data = _load(name)
    version, arch, free, total, table, data_at, parts = GOLDEN[name]
    assert (s.version, s.arch, s.descriptors_free, s.descriptors_total, s.descriptors_offset, s.data_offset) == \
        (version, arch, free, total, table, data_at)
    assert [(p.id, p.group, p.offset, p.offset + p.size, p.fs, p.kind, p.arch) for p in s.partitions] == parts
    assert sif.meta_length(data) == 4096 + 48 * 585 == 32176


def test_platform_comes_from_the_header_else_the_primary_partition():
    assert sif.platform(_load("one-group.sif")[0]) == {"os": "linux", "architecture": "386"}
    assert sif.platform(_load("empty.sif")[0]) is None
    assert _load("empty.sif")[0].problems() == ["no primary system partition (nothing for a runtime to run)"]
    # a writer that leaves the header's code unknown ("00"): the primary partition decides
    built = sif.parse(sif_build.sif([(b"x" * 10, "squashfs", "primary", "arm64")], header_arch=""))
    assert built.arch == "" and sif.platform(built) == {"os": "linux", "architecture": "arm64"}
    # header and primary partition disagree: parseable, and a problem validate reports
    odd = sif.parse(sif_build.sif([(b"x", "squashfs", "primary", "arm64")], header_arch="amd64"))
    assert odd.architecture == "amd64"
    assert odd.problems() == ["header architecture amd64 but primary partition arm64"]


@sif_build.needs_squashfs
def test_builder_around_a_real_squashfs(tmp_path):
    tree = sif_build.app_tree(str(tmp_path / "root"))
    data = sif_build.sif_around(tree, str(tmp_path), "arm64")
    s = sif.parse(data, len(data))
    (p,) = s.partitions
    assert (p.fs, p.kind, p.arch, p.offset % 4096) == ("squashfs", "primary", "arm64", 0)
    assert data[p.offset:p.offset + 4] == b"hsqs"           # squashfs's own magic where the descriptor says
    assert sif.platform(s) == {"os": "linux", "architecture": "arm64"}


def _header(**kw):
    good = dict(launch=b"", magic=b"SIF_MAGIC\0", version=b"01\0", arch=b"02\0", free=0, total=1,
                offset=128, size=585, data_offset=713, data_size=0)
    good.update(kw)
    return struct.pack("<32s10s3s3s16s8q", good["launch"], good["magic"], good["version"], good["arch"], b"",
                       0, 0, good["free"], good["total"], good["offset"], good["size"], good["data_offset"],
                       good["data_size"])


@pytest.mark.parametrize("data, file_size, reason", [
    (b"", None, "shorter than a SIF header"),
    (b"\0" * 200, None, "not a SIF file"),
    (_header(version=b"02\0") + b"\0" * 585, None, "SIF version 02"),
    (_header(total=-1), None, "-1 descriptor slots"),
    (_header(total=limits.SIF_DESCRIPTORS + 1), None, "at most limits.SIF_DESCRIPTORS"),
    (_header(free=2, total=1), None, "2 free descriptors of 1"),
    (_header(offset=12), None, "inside the header"),
    (_header(total=3), None, "runs past the bytes read"),
    (_header() + b"\0" * 585, 200, "runs past the file"),
    (_header(data_offset=713, data_size=1 << 40) + b"\0" * 585, 713, "data section"),
    (_header() + struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 1, 1, 1, 0, 10 ** 12, 4, 4, 0, 0, 0, 0, b"", b""),
     713, "object 1 (4 bytes at 1000000000000) outside the file"),
    (_header() + struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 1, 1, 1, 0, -5, 4, 4, 0, 0, 0, 0, b"", b""),
     None, "outside the file"),
])
def test_hostile_headers_are_bad_input_with_the_reason(data, file_size, reason):
    with pytest.raises(BadInput, match=None) as exc:
        sif.parse(data, file_size, "x.sif")
    assert reason in str(exc.value) and str(exc.value).startswith("x.sif: ")


def test_meta_length_refuses_a_table_past_the_read_bound():
    far = _header(offset=limits.SIF_META_BYTES, total=1)
    with pytest.raises(BadInput, match="limits.SIF_META_BYTES"):
        sif.meta_length(far)
    assert sif.meta_length(_header(total=2)) == 128 + 2 * 585


def test_unknown_codes_are_named_unknown_not_errors():
    data = _header() + struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 1, 7, 1, 0, 713, 0, 0, 0, 0, 0, 0, b"",
                                   struct.pack("<ii3s", 99, 99, b"77\0"))
    (p,) = sif.parse(data, len(data)).partitions
    assert (p.fs, p.kind, p.arch) == ("unknown", "unknown", "")
    unused = _header() + struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 0, 7, 1, 0, -1, -1, 0, 0, 0, 0, 0, b"", b"")
    assert sif.parse(unused, len(unused)).partitions == ()          # an unused slot is not read


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=2048), st.one_of(st.none(), st.integers(min_value=-10, max_value=1 << 62)))
def test_any_bytes_parse_or_are_bad_input(data, file_size):
    try:
        s = sif.parse(data, file_size)
    except BadInput:
        return
    assert len(s.partitions) <= s.descriptors_total <= limits.SIF_DESCRIPTORS


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.data())
def test_mutated_real_sif_parses_or_is_bad_input(draw):
    """Flip bytes of a real SIF's header and first descriptors: never anything but BadInput,
    and every object read lies inside the file."""
    _, data = _load("two-groups.sif")
    buf = bytearray(data[:32176])
    for _ in range(draw.draw(st.integers(1, 8))):
        at = draw.draw(st.one_of(st.integers(0, 127), st.integers(4096, 4096 + 3 * 585)))
        buf[at] = draw.draw(st.integers(0, 255))
    try:
        s = sif.parse(bytes(buf), len(data))
    except BadInput:
        return
    assert all(0 <= p.offset and p.offset + p.size <= len(data) for p in s.partitions)


@pytest.mark.parametrize("name, data", [
    ("huge-table", _header(total=limits.SIF_DESCRIPTORS, offset=1 << 40)),
    ("object-far", _header() + struct.pack("<iBIIIqqqqqqq128s384s", 0x4004, 1, 1, 1, 0, 1 << 62, 1 << 62, 0, 0, 0,
                                          0, 0, b"", struct.pack("<ii3s", 1, 2, b"02\0"))),
    ("no-primary", _header(total=0, free=0)),
    ("truncated", _header()[:100]),
])
def test_hostile_sif_files_through_the_cli(tmp_path, name, data):
    """annotate --variant FILE (and --infer) under the memory and time cap: exit 2, one line."""
    path = tmp_path / f"{name}.sif"
    path.write_bytes(data)
    for extra in ((), ("--infer",)):
        proc = run_hostile("annotate", f"oci:{tmp_path}/o:1", "--variant", str(path), "--dry-run", *extra)
        assert proc.returncode == 2 and proc.stdout == ""


def test_artifact_manifest_is_the_one_apptainer_pushes():
    """apptainer internal/pkg/client/oras/image.go's example manifest: config {} typed SIF_CONFIG
    (sha256:44136fa3…, 2 bytes), one SIF layer titled with the file's name, the SIF's creation
    time in RFC 3339 UTC as org.opencontainers.image.created."""
    layer = "sha256:13e1552aaf6aa3916353730be52e06ec214ae8f8a89062cec1f33990b553a6c9"
    doc = sif.artifact_manifest(layer, 29814784, "ubuntu_latest.sif", 1703001734)
    assert doc == {
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.sylabs.sif.config.v1+json", "size": 2,
                   "digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
        "layers": [{"mediaType": "application/vnd.sylabs.sif.layer.v1.sif", "digest": layer, "size": 29814784,
                    "annotations": {"org.opencontainers.image.title": "ubuntu_latest.sif"}}],
        "annotations": {"org.opencontainers.image.created": "2023-12-19T16:02:14Z"}}
    assert "annotations" not in sif.artifact_manifest(layer, 1, "x.sif", 0)      # no time: none written
    assert sif.manifest_problems(doc) == []
    assert sif.manifest_problems(dict(doc, layers=[dict(doc["layers"][0], mediaType="x")])) == \
        ["layer media type x is not application/vnd.sylabs.sif.layer.v1.sif"]
    legacy = dict(doc, layers=[dict(doc["layers"][0], mediaType="appliciation/vnd.sylabs.sif.layer.tar")])
    assert sif.manifest_problems(legacy) == []                   # Singularity < 3.7's, as Apptainer pulls it


def test_problems_two_primaries_and_no_architecture():
    """What validate reports and annotate refuses alike: two primary system partitions
    (which would a runtime mount?), no architecture in the header nor the primary partition."""
    two = sif.parse(sif_build.sif([(b"x", "squashfs", "primary", "amd64"), (b"y", "squashfs", "primary", "arm64")]))
    assert two.problems() == ["2 primary system partitions (amd64, arm64): a SIF has one"]
    bare = sif.parse(sif_build.sif([(b"x", "squashfs", "primary", "")], header_arch=""))
    assert bare.problems() == ["no architecture in the SIF header or its primary partition "
                               "(apptainer push refuses it too)"]


@pytest.mark.parametrize("kw, reason", [
    (dict(size=1 << 62), "descriptor table size"),
    (dict(size=-1), "descriptor table size"),
    (dict(data_offset=1 << 62, data_size=1 << 62), "data section"),
])
def test_header_sizes_are_bounded_by_the_file(kw, reason):
    data = _header(**kw) + b"\0" * 585
    with pytest.raises(BadInput) as exc:
        sif.parse(data, len(data), "x.sif")
    assert reason in str(exc.value)


def test_a_creation_time_past_year_9999_is_no_traceback(tmp_path):
    data = bytearray(sif_build.sif([(b"x" * 10, "squashfs", "primary", "amd64")]))
    struct.pack_into("<q", data, 64, 1 << 62)                 # the header's "created"
    path = tmp_path / "late.sif"
    path.write_bytes(bytes(data))
    proc = run_hostile("annotate", f"oci:{tmp_path}/o:1", "--variant", str(path), "--dry-run")
    assert proc.returncode == 0 and "org.hpc-compat" not in proc.stderr
