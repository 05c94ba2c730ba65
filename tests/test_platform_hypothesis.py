"""Property: whatever the descriptors of an index hold (random types in platform fields and
annotations, non-objects, huge numbers), rank() raises nothing but BadInput, and every
well-formed descriptor comes back as a candidate judged on its own merits."""
import hashlib

from hypothesis import given, settings, strategies as st

from compat.errors import BadInput
from compat.host.assume import cpu_from_target
from compat.host.profile import OS, Host
from compat.match.rank import rank

from helpers import P  # noqa: E402
HOSTS = [Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3")),
         Host(os=OS(arch="arm64", variant="v9"), cpu=cpu_from_target("neoverse_v2"))]

scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.integers(min_value=10 ** 40),
                    st.floats(allow_nan=True), st.text(max_size=12),
                    st.sampled_from(["amd64", "arm64", "linux", "v3", "v9.6", "8", "v8.10", "vx", "unknown"]))
junk = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                      st.dictionaries(st.text(max_size=8), inner, max_size=3)),
                    max_leaves=6)
keys = st.sampled_from([P + "cpu.target", P + "weight", P + "gpu.cuda.arch", P + "mpi.mode", P + "fabric",
                        P + "os.kernel", P + "colour", "io.archspec.cpu.target", "vnd.docker.reference.type", "x"])
platform_junk = st.dictionaries(st.sampled_from(["os", "architecture", "variant", "os.features", "os.version",
                                                 "features", "compatibilities"]), junk, max_size=5)
hostile = st.one_of(junk, st.fixed_dictionaries({}, optional={
    "mediaType": st.one_of(junk, st.sampled_from(["application/vnd.oci.image.manifest.v1+json",
                                                   "application/vnd.oci.image.index.v1+json"])),
    "digest": st.one_of(junk, st.just("sha256:" + "a" * 64)), "size": junk,
    "platform": st.one_of(junk, platform_junk), "annotations": st.one_of(junk, st.dictionaries(keys, junk)),
    "artifactType": junk}))
VARIANTS = {"amd64": ["", "v1", "v2", "v3", "v4"], "x86_64": ["", "v2", "v4"], "ppc64le": [""],
            "arm64": ["", "v8", "v8.2", "v8.7", "v9", "v9.6"], "aarch64": ["", "8", "v9.0"]}


@st.composite
def good_platform(draw):
    arch = draw(st.sampled_from(sorted(VARIANTS)))
    plat = {"os": draw(st.sampled_from(["linux", "Linux", "windows"])), "architecture": arch}
    variant = draw(st.sampled_from(VARIANTS[arch]))
    if variant:
        plat["variant"] = variant
    feats = draw(st.lists(st.sampled_from(["gpu", "simd"]), max_size=2))
    if feats:
        plat["os.features"] = feats
    return plat


good_annotations = st.dictionaries(keys, st.sampled_from(["zen3", "neoverse_v1", "5", "sm_90", "bind", "tcp",
                                                          ">=5.10", "x", "sm_9x"]), max_size=3)


@st.composite
def index(draw):
    good = draw(st.lists(st.tuples(good_platform(), good_annotations), max_size=6))
    bad = draw(st.lists(hostile, max_size=6))
    entries = [("good", {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 7,
                         "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(),
                         "platform": plat, "annotations": ann}) for i, (plat, ann) in enumerate(good)]
    entries += [("bad", b) for b in bad]
    order = draw(st.permutations(range(len(entries))))
    return [entries[i] for i in order]


@settings(max_examples=150, deadline=None, derandomize=True)
@given(index(), st.sampled_from(HOSTS), st.sampled_from([None, "linux/arm64/v8.7", "linux/amd64/v2"]))
def test_rank_survives_any_descriptor_and_keeps_every_well_formed_one(entries, host, platform):
    doc = {"schemaVersion": 2, "manifests": [d for _, d in entries]}
    try:
        r = rank(doc, host, platform=platform)
    except BadInput:
        return
    assert len(r.candidates) == len(entries)
    by_path = {c.path: c for c in r.candidates}
    for i, (kind, d) in enumerate(entries):
        c = by_path[f"manifests[{i}]"]
        if kind == "good":
            assert c.digest == d["digest"] and not c.reason.startswith("malformed descriptor"), c
        if c.compatible:
            assert c.key and c.reason


@settings(max_examples=100, deadline=None, derandomize=True)
@given(junk)
def test_rank_of_any_document_is_a_ranking_or_bad_input(doc):
    try:
        rank(doc, HOSTS[0])
    except BadInput:
        pass
