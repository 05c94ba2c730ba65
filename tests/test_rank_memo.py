"""rank() decides each distinct (requirement-bearing annotations, platform) pair once per call
and shares the answer (issue 13). That must change nothing: every candidate, reason, note,
check and place in the order equals what ranking each descriptor alone gives, for big indexes
of every kind and for generated ones, on hosts with known and unknown facts."""
import gc
import hashlib

import pytest
from hypothesis import given, settings, strategies as st

from compat.host.assume import cpu_from_target
from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host, Runtime
from compat.match.nfd import NfdContext
from compat.match.rank import COMPATIBLE, flatten, rank
from compat.oci import media

from big_index import MALFORMED, P, PLATFORMS, POOL, bench_host, big_index
from test_platform_hypothesis import hostile

HOSTS = {
    "zen4-h100": bench_host(),
    "arm64-unknowns": Host(os=OS(arch="arm64", variant="v9"), cpu=cpu_from_target("neoverse_v2")),
    "nothing-known": Host(os=OS(arch="amd64"), cpu=CPU(), gpus=None, fabrics=None, mpi=None, pmi=None),
    "icelake-mpich": Host(os=OS(arch="amd64", variant="v4", kernel="6.8.0", glibc="2.39"),
                          cpu=cpu_from_target("icelake"),
                          gpus=(GPU("nvidia", 0, cc="8.0", driver="535.1", cuda="12.2"),
                                GPU("nvidia", 1, cc="9.0", driver="535.1", cuda="12.2")),
                          fabrics=(Fabric("slingshot"),), mpi=(MPI("mpich", "4.1", "mpich"),), pmi=("pmi2",),
                          runtimes=(Runtime("apptainer", "1.3.4"), Runtime("podman", "4.3.1"))),
}
OPTIONS = [{}, {"allow_unknown": True}, {"platform": "linux/amd64/v2"}, {"platform": "linux/arm64/v8.2"},
           {"nfd": NfdContext(artifacts={}, features=None)}, {"runtime": "podman"}]


def alone(index, host, **options):
    """The reference: every entry of the walk ranked in a call of its own (nothing shared),
    put back in its place, then ordered as rank() orders."""
    cands = []
    for pos, entry in enumerate(flatten(index)):
        c = rank(index, host, entries=[entry], **options).candidates[0]
        cands.append(c._replace(position=pos, key=c.key._replace(order=-pos) if c.key else ()))
    good = sorted((c for c in cands if c.verdict == COMPATIBLE), key=lambda c: c.key, reverse=True)
    return tuple(good + [c for c in cands if c.verdict != COMPATIBLE])


def assert_same(index, host, **options):
    fast = rank(index, host, **options).candidates
    slow = alone(index, host, **options)
    assert len(fast) == len(slow)
    for f, s in zip(fast, slow):
        assert f == s, (f, s)


@pytest.mark.parametrize("host", sorted(HOSTS))
def test_a_big_index_ranks_as_each_descriptor_alone(host):
    assert_same(big_index(2500, seed=len(host)), HOSTS[host])


@pytest.mark.parametrize("options", OPTIONS, ids=lambda o: ",".join(o) or "plain")
def test_the_options_keep_the_memo_honest(options):
    assert_same(big_index(800, seed=7), HOSTS["zen4-h100"], **options)


def test_the_big_index_has_every_kind_of_entry():
    r = rank(big_index(), bench_host())
    verdicts = {c.verdict for c in r.candidates}
    assert verdicts == {"compatible", "incompatible", "error", "skipped", "unknown"}
    assert len(r.candidates) == 10_000 and len(r.compatible) > 1000
    assert any(c.reason.startswith("duplicate of") for c in r.candidates)


@st.composite
def annotations(draw):
    keys = draw(st.lists(st.sampled_from(sorted(POOL)), max_size=3, unique=True))
    ann = {k: draw(st.sampled_from(POOL[k])) for k in keys}
    if draw(st.booleans()):
        ann[P + "description"] = draw(st.sampled_from(["a", "b", "CUDA 12.4"]))
    return ann


@st.composite
def near(draw, base):
    """``base`` with one key set to another value, or removed: the memo's near misses."""
    ann = dict(base)
    key = draw(st.sampled_from(sorted(POOL)))
    if key in ann and draw(st.booleans()):
        del ann[key]
    else:
        ann[key] = draw(st.sampled_from(POOL[key]))
    return ann


KINDS = st.sampled_from([None] * 8 + list(range(len(MALFORMED) + 1)))  # well formed, malformed, hostile


@st.composite
def indexes(draw):
    """Few distinct values, many descriptors: the memo is hit, and collides if it can."""
    plats = draw(st.lists(st.one_of(st.sampled_from(PLATFORMS[:4]), st.sampled_from(PLATFORMS)), min_size=1,
                          max_size=3))          # amd64 mostly: most candidates then pass the filter
    base = draw(annotations())
    anns = [base] + draw(st.lists(near(base), min_size=1, max_size=4))
    manifests = []
    for i in range(draw(st.integers(1, 24))):
        d = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 10 + i,
             "digest": "sha256:" + hashlib.sha256(str(draw(st.integers(0, 30))).encode()).hexdigest(),
             "platform": dict(draw(st.sampled_from(plats))), "annotations": dict(draw(st.sampled_from(anns)))}
        if draw(st.integers(0, 3)) == 0:          # a SIF with an image's values: the runtime tells them apart
            d["artifactType"] = media.SIF_CONFIG
        how = draw(KINDS)
        if how is not None:
            d = MALFORMED[how](d) if how < len(MALFORMED) else draw(hostile)
        manifests.append(d)
    return {"schemaVersion": 2, "manifests": manifests}


@settings(max_examples=120, deadline=None, derandomize=True)
@given(indexes(), st.sampled_from(sorted(HOSTS)), st.sampled_from(range(len(OPTIONS))))
def test_generated_indexes_rank_as_each_descriptor_alone(index, host, options):
    assert_same(index, HOSTS[host], **OPTIONS[options])


def test_ranking_leaves_no_reference_cycles():
    """What a ranking built is freed when it is dropped, not at the next full collection (a
    cycle through the walk once kept every entry of a 10,000-descriptor index alive)."""
    index, host = big_index(500), bench_host()
    gc.collect()
    was = gc.isenabled()
    gc.disable()
    try:
        rank(index, host)
        assert gc.collect() == 0
    finally:
        if was:
            gc.enable()
