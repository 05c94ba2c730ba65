"""containerd's platform vectors (github.com/containerd/platforms, commit 09756f5:
compare_test.go TestOnly, TestOnlyStrict, TestCompareOSFeatures; platforms_test.go
TestParseSelector, TestParseSelectorInvalid; the ladders of compare.go platformVector),
translated to compat: inputs and containerd's outcomes, and compat's outcome where it
deliberately differs (spec/selection.md, "Where compat differs from containerd"), each
marked with the reason's short name.

Every vector runs through compat's ranking, with the host platform given as ``--platform``.
"""
import hashlib
import re

import pytest

from compat.errors import BadInput
from compat.host.assume import cpu_from_target
from compat.host.profile import OS, Host
from compat.match import platform as P
from compat.match.rank import rank

# deliberate differences (spec/selection.md)
NO_386 = "no amd64 -> 386 fallback"
NO_ARM32 = "no arm64 -> arm (32-bit) fallback"
ONE_PART = "--platform needs OS/ARCH"

_SPEC = re.compile(r"^([A-Za-z0-9_-]+)(?:\(([A-Za-z0-9_.%-]*)((?:\+[A-Za-z0-9_.%-]+)*)\))?/([^/]+)(?:/([^/]+))?$")


def descriptor(spec: str, n: int = 0) -> dict:
    """A descriptor whose platform is a containerd specifier (``os(version+feature)/arch/variant``)."""
    m = _SPEC.match(spec)
    plat = {"os": m.group(1), "architecture": m.group(4)}
    if m.group(5):
        plat["variant"] = m.group(5)
    if m.group(2):
        plat["os.version"] = m.group(2)
    if m.group(3):
        plat["os.features"] = m.group(3)[1:].split("+")
    return {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 1, "platform": plat,
            "digest": "sha256:" + hashlib.sha256(f"{spec} {n}".encode()).hexdigest()}


HOST = Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3"))


def ranked(host_spec: str, specs):
    descs = [descriptor(s, i) for i, s in enumerate(specs)]
    r = rank({"schemaVersion": 2, "manifests": descs}, HOST, platform=host_spec)
    by_digest = {d["digest"]: s for d, s in zip(descs, specs)}
    return [by_digest[c.digest] for c in r.candidates if c.compatible]


# -- TestOnly: does Only(host) match the candidate? --------------------------------------------------
# (host, candidate, containerd's answer, compat's answer where it differs and why)

def _only(host, true=(), false=(), differs=()):
    why = dict(differs)
    return [(host, c, answer, why.get(c)) for answer, cands in ((True, true), (False, false)) for c in cands]


ARM32 = ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"]
ONLY = (
    _only("linux/amd64", ["linux/amd64", "linux/386"],
          ["linux/amd64/v2", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
          differs=[("linux/386", NO_386)])
    + _only("linux/amd64/v2", ["linux/amd64", "linux/amd64/v1", "linux/amd64/v2", "linux/386"],
            ["linux/amd64/v3", "linux/amd64/v4", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"],
            differs=[("linux/386", NO_386)])
    + _only("linux/386", ["linux/386"], ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64", "windows/arm"])
    + _only("windows/amd64", ["windows/amd64", "windows(10.0.17763)/amd64"],
            ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/arm"])
    + _only("linux/arm/v8", ARM32, ["linux/amd64", "linux/arm/v4", "linux/arm64", "windows/amd64", "windows/arm"])
    + _only("linux/arm/v7", ARM32[:4], ["linux/amd64", "linux/arm/v4", "linux/arm/v8", "linux/arm64",
                                        "windows/amd64", "windows/arm"])
    + _only("linux/arm/v6", ["linux/arm/v5", "linux/arm/v6"],
            ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v7", "linux/arm/v8", "linux/arm64",
             "windows/amd64", "windows/arm"])
    + _only("linux/arm/v5", ["linux/arm/v5"], ["linux/amd64", "linux/arm", "linux/arm/v4", "linux/arm/v6",
                                               "linux/arm/v7", "linux/arm/v8", "linux/arm64", "windows/amd64"])
    + _only("linux/arm/v4", ["linux/arm/v4"], ["linux/amd64", "linux/arm", "linux/arm/v5", "linux/arm/v6",
                                               "linux/arm/v7", "linux/arm/v8", "linux/arm64", "windows/amd64"])
    + _only("linux/arm64/v9.6", ARM32 + ["linux/arm64", "linux/arm64/v8"] + [f"linux/arm64/v8.{i}" for i in range(1, 10)]
            + ["linux/arm64/v9", "linux/arm64/v9.0"] + [f"linux/arm64/v9.{i}" for i in range(1, 7)],
            ["linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.10"],
            differs=[(a, NO_ARM32) for a in ARM32])
    + _only("linux/arm64/v9", ARM32 + ["linux/arm64", "linux/arm64/v8"] + [f"linux/arm64/v8.{i}" for i in range(1, 6)]
            + ["linux/arm64/v9", "linux/arm64/v9.0"],
            ["linux/amd64", "linux/arm/v4", "windows/amd64", "windows/arm", "linux/arm64/v8.6"],
            differs=[(a, NO_ARM32) for a in ARM32])
    + _only("linux/arm64/v8.1", ARM32 + ["linux/arm64", "linux/arm64/v8", "linux/arm64/v8.1"],
            ["linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "windows/amd64", "windows/arm"],
            differs=[(a, NO_ARM32) for a in ARM32])
    + _only("linux/arm64", ARM32 + ["linux/arm64", "linux/arm64/v8"],
            ["linux/amd64", "linux/arm/v4", "linux/arm/v9", "linux/arm64/v9", "windows/amd64", "windows/arm"],
            differs=[(a, NO_ARM32) for a in ARM32])
)


@pytest.mark.parametrize("host,cand,containerd,differs", ONLY, ids=[f"{h} {c}" for h, c, _, _ in ONLY])
def test_only_matches_what_containerd_matches(host, cand, containerd, differs):
    expected = (not containerd) if differs else containerd
    assert (ranked(host, [cand]) == [cand]) is expected


# -- TestOnlyStrict: the same platform after normalisation ------------------------------------------
STRICT = [
    ("linux/amd64", ["linux/amd64"], ["linux/386", "linux/arm/v7", "linux/arm64", "windows/amd64"]),
    ("linux/386", ["linux/386"], ["linux/amd64", "linux/arm/v7", "linux/arm64", "windows/amd64"]),
    ("windows/amd64", ["windows/amd64", "windows(10.0.17763)/amd64"], ["linux/amd64", "linux/arm64", "windows/arm"]),
    ("windows(10.0.17763)/amd64", ["windows/amd64", "windows(10.0.17763)/amd64"], ["linux/amd64", "windows/arm"]),
    ("linux/arm/v8", ["linux/arm/v8"], ["linux/arm", "linux/arm/v5", "linux/arm/v6", "linux/arm/v7", "linux/arm64"]),
    ("linux/arm/v7", ["linux/arm", "linux/arm/v7"], ["linux/arm/v5", "linux/arm/v6", "linux/arm/v8", "linux/arm64"]),
    ("linux/arm/v6", ["linux/arm/v6"], ["linux/arm/v5", "linux/arm", "linux/arm/v7", "linux/arm/v8"]),
    ("linux/arm/v5", ["linux/arm/v5"], ["linux/arm", "linux/arm/v6", "linux/arm/v7", "linux/arm/v8"]),
    ("linux/arm64/v9.5", ["linux/arm64/v9.5"], ["linux/arm", "linux/arm/v8", "linux/arm64/v8", "linux/arm64/v8.1",
                                                "linux/arm64/v9", "linux/arm64/v9.1", "linux/arm64/v9.4"]),
    ("linux/arm64/v9", ["linux/arm64/v9", "linux/arm64/v9.0"], ["linux/arm/v8", "linux/arm64/v8", "linux/arm64/v8.1"]),
    ("linux/arm64/v8.1", ["linux/arm64/v8.1"], ["linux/arm/v8", "linux/arm64/v8", "linux/arm64/v9"]),
    ("linux/arm64", ["linux/arm64", "linux/arm64/v8"], ["linux/arm", "linux/arm/v8", "linux/arm64/v9"]),
]


@pytest.mark.parametrize("host,same,other", STRICT, ids=[s[0] for s in STRICT])
def test_strict_same_platform_after_normalisation(host, same, other):
    h = P.parse(host)
    for spec in same + other:
        cand = P.from_descriptor(descriptor(spec)["platform"])
        assert ((cand.os, cand.arch, cand.variant) == (h.os, h.arch, h.variant)) is (spec in same), spec


# -- ladders: Only's order (platformVector), exact first, each lower one in order ------------------
LADDERS = [
    ("linux/arm64/v9.6", ["linux/arm64/v9.6", "linux/arm64/v9.5", "linux/arm64/v9.4", "linux/arm64/v9.3",
                          "linux/arm64/v9.2", "linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.9",
                          "linux/arm64/v8.8", "linux/arm64/v8.7", "linux/arm64/v8.6", "linux/arm64/v8.5",
                          "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1",
                          "linux/arm64"]),
    ("linux/arm64/v9.1", ["linux/arm64/v9.1", "linux/arm64/v9", "linux/arm64/v8.6", "linux/arm64/v8.5",
                          "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64"]),
    ("linux/arm64/v9", ["linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.4", "linux/arm64/v8.3",
                        "linux/arm64/v8.2", "linux/arm64/v8.1", "linux/arm64"]),
    ("linux/arm64/v8.9", ["linux/arm64/v8.9", "linux/arm64/v8.8", "linux/arm64/v8.7", "linux/arm64/v8.6",
                          "linux/arm64/v8.5", "linux/arm64/v8.4", "linux/arm64/v8.3", "linux/arm64/v8.2",
                          "linux/arm64/v8.1", "linux/arm64"]),
    ("linux/arm64/v8.7", ["linux/arm64/v8.7", "linux/arm64/v8.2", "linux/arm64"]),
    ("linux/amd64/v4", ["linux/amd64/v4", "linux/amd64/v3", "linux/amd64/v2", "linux/amd64"]),
    ("linux/arm/v8", ["linux/arm/v8", "linux/arm/v7", "linux/arm/v6", "linux/arm/v5"]),
]


@pytest.mark.parametrize("host,order", LADDERS, ids=[h for h, _ in LADDERS])
@pytest.mark.parametrize("listed", ["reversed", "rotated", "best-first"])
def test_variant_ladder_order_is_containerds(host, order, listed):
    specs = {"reversed": order[::-1], "rotated": order[len(order) // 2:] + order[:len(order) // 2],
             "best-first": order}[listed]
    assert ranked(host, specs) == order


def test_v9_0_and_v8_6_do_not_tie():
    # archspec gives armv9.0a and armv8.6a the same depth; on the ladder v9 is above v8.6
    assert ranked("linux/arm64/v9.1", ["linux/arm64/v8.6", "linux/arm64/v9"]) == ["linux/arm64/v9", "linux/arm64/v8.6"]


# -- TestCompareOSFeatures: more matching os.features first ------------------------------------------
# (host, listed, containerd's order of all, compat's compatible ones in order): containerd sorts
# the non-matching ones too; compat excludes them (incompatible), so only the matches are ranked.
OS_FEATURES = [
    ("linux/amd64", ["windows/amd64", "linux/amd64", "linux(+other)/amd64", "linux/arm64"],
     ["linux/amd64", "linux(+other)/amd64", "windows/amd64", "linux/arm64"], ["linux/amd64"]),
    ("linux(+none)/amd64", ["windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"],
     ["linux/amd64", "linux(+other)/amd64", "windows/amd64", "linux/arm64"], ["linux/amd64"]),
    ("linux(+other)/amd64", ["windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"],
     ["linux(+other)/amd64", "linux/amd64", "windows/amd64", "linux/arm64"], ["linux(+other)/amd64", "linux/amd64"]),
    ("linux(+af+other+zf)/amd64", ["windows/amd64", "linux/amd64", "linux/arm64", "linux(+other)/amd64"],
     ["linux(+other)/amd64", "linux/amd64", "windows/amd64", "linux/arm64"], ["linux(+other)/amd64", "linux/amd64"]),
    ("linux(+f1+f2)/amd64", ["linux/amd64", "linux(+f2)/amd64", "linux(+f1)/amd64", "linux(+f1+f2)/amd64"],
     ["linux(+f1+f2)/amd64", "linux(+f2)/amd64", "linux(+f1)/amd64", "linux/amd64"],
     ["linux(+f1+f2)/amd64", "linux(+f2)/amd64", "linux(+f1)/amd64", "linux/amd64"]),
    # os.version is not compared (on Linux neither does containerd)
    ("linux(7.2+other)/amd64", ["linux/amd64", "linux(+other)/amd64", "linux(7.1)/amd64", "linux(7.2+other)/amd64"],
     ["linux(+other)/amd64", "linux(7.2+other)/amd64", "linux/amd64", "linux(7.1)/amd64"],
     ["linux(+other)/amd64", "linux(7.2+other)/amd64", "linux/amd64", "linux(7.1)/amd64"]),
]


@pytest.mark.parametrize("host,listed,containerd,compat", OS_FEATURES, ids=[v[0] for v in OS_FEATURES])
def test_more_matching_os_features_rank_first(host, listed, containerd, compat):
    assert ranked(host, listed) == compat
    assert compat == [s for s in containerd if s in compat]      # the same relative order as containerd


def test_os_features_rank_above_plain_with_a_host_offering_them():
    h = HOST._replace(os=HOST.os._replace(features=("f1", "f2")))
    descs = [descriptor("linux/amd64/v3"), descriptor("linux(+f1+f2)/amd64/v3")]
    assert rank({"schemaVersion": 2, "manifests": descs}, h).best.digest == descs[1]["digest"]


# -- TestParseSelector: normalisation ----------------------------------------------------------------
# (descriptor or --platform specifier, normalised os/arch/variant, features)
NORMALISE = [
    ("linux/arm64", "linux/arm64", ()), ("linux/aarch64", "linux/arm64", ()), ("linux/aarch64/v8", "linux/arm64", ()),
    ("linux/arm64/v8", "linux/arm64", ()), ("linux/arm64/8", "linux/arm64", ()), ("linux/arm64/v8.0", "linux/arm64", ()),
    ("linux/arm64/9", "linux/arm64/v9", ()), ("linux/arm64/9.0", "linux/arm64/v9", ()),
    ("linux/arm64/v9.0", "linux/arm64/v9", ()),
    ("linux/arm", "linux/arm/v7", ()), ("linux/arm/7", "linux/arm/v7", ()), ("linux/armhf", "linux/arm/v7", ()),
    ("linux/armel", "linux/arm/v6", ()), ("linux/arm/v6", "linux/arm/v6", ()), ("linux/arm/v7", "linux/arm/v7", ()),
    ("linux/Aarch64", "linux/arm64", ()), ("Linux/x86_64", "linux/amd64", ()), ("linux/x86-64", "linux/amd64", ()),
    ("linux/amd64/v1", "linux/amd64", ()), ("linux/i386", "linux/386", ()), ("linux/s390x", "linux/s390x", ()),
    ("macOS/arm64", "darwin/arm64", ()),
    ("linux(+gpu)/amd64", "linux/amd64", ("gpu",)), ("linux(+gpu+simd)/amd64", "linux/amd64", ("gpu", "simd")),
    ("linux(+unsorted+erofs)/amd64", "linux/amd64", ("erofs", "unsorted")),
    ("windows(10.0.17763+win32k)/amd64", "windows/amd64", ("win32k",)),
    ("windows()/amd64", "windows/amd64", ()),
]


@pytest.mark.parametrize("spec,expected,features", NORMALISE, ids=[n[0] for n in NORMALISE])
def test_normalisation(spec, expected, features):
    for p in (P.parse(spec), P.from_descriptor(descriptor(spec)["platform"])):
        assert (f"{p.os}/{p.arch}" + (f"/{p.variant}" if p.variant else ""), p.features) == (expected, features)


# TestParseSelectorInvalid, and compat's own: a single component (containerd fills in the
# running machine's half, which is not the host compat resolves for) and a variant the
# architecture does not have
INVALID = [("", None), ("/linux/arm", None), ("linux/arm/", None), ("linux /arm", None), ("linux/&arm", None),
           ("linux/arm/foo/bar", None), ("linux", ONE_PART), ("arm64", ONE_PART), ("windows(10.0.17763)", ONE_PART),
           ("linux/amd64/vx", "variant"), ("linux/amd64/3", "variant"), ("linux/arm64/v8.10", "variant"),
           ("linux/arm64/v10", "variant"), ("linux/arm/vx", "variant")]


@pytest.mark.parametrize("spec,why", INVALID, ids=[i[0] or "empty" for i in INVALID])
def test_invalid_specifiers_are_bad_input(spec, why):
    with pytest.raises(BadInput, match="--platform"):
        P.parse(spec)
