"""compat plan and the runtime dimension (fixes to issue 15): nodes that differ only in their
runtimes or rootless facts are different classes, each judged with its own first runtime
(spec/plan.md "Classes", spec/selection.md "Runtime"). Profiles are real detections of
fixtures/hosts captures, with the runtime facts replaced."""
import os

import pytest

from conftest import HOSTS
from compat.oci import media

LAPTOP = os.path.join(HOSTS, "laptop-tigerlake")      # linux/amd64, no GPU


def _desc(n, annotations, sif=False):
    d = {"mediaType": media.OCI_MANIFEST, "digest": "sha256:" + f"{n:x}" * 64, "size": 500,
         "platform": {"os": "linux", "architecture": "amd64"}, "annotations": annotations}
    if sif:
        d["artifactType"] = media.SIF_CONFIG
    return d


def _index(*manifests):
    return {"schemaVersion": 2, "mediaType": media.OCI_INDEX, "manifests": list(manifests)}


@pytest.fixture(scope="module")
def laptop():
    import compat.host
    return compat.host.detect(sysroot=LAPTOP)


def _with(host, *runtimes, **rootless):
    from compat.host.profile import Rootless
    return host._replace(runtimes=tuple(runtimes), rootless=Rootless(**rootless) if rootless else host.rootless)


def _check_against_select(p, hosts, index):
    """Every node's plan choice and ranking are select's for that node's own profile."""
    import compat
    for node, host in hosts.items():
        ranking = compat.rank(index, host)
        got = p.for_node(node)
        assert (got.digest if got else None) == (ranking.best.digest if ranking.best else None), node
        assert [c.digest for c in p.ranking_for_node(node).candidates] == [c.digest for c in ranking.candidates]


def test_podman_node_gets_the_image_apptainer_node_the_sif(laptop):
    import compat
    from compat.host.profile import Runtime
    sif = _desc(1, {"org.hpc-compat.gpu.vendor": "none"}, sif=True)      # ranks above the image
    image = _desc(2, {})
    index = _index(sif, image)
    hosts = {"a1": _with(laptop, Runtime("apptainer", "1.3.4", "/usr/bin/apptainer")),
             "p1": _with(laptop, Runtime("podman", "4.9.3", "/usr/bin/podman")),
             "a2": _with(laptop, Runtime("apptainer", "1.3.4", "/opt/apptainer/bin/apptainer"))}  # path: one class
    p = compat.plan(index, hosts)
    assert len(p.classes) == 2
    assert p.node_class["a1"] == p.node_class["a2"] != p.node_class["p1"]
    assert p.for_node("a1").digest == p.for_node("a2").digest == sif["digest"]
    assert p.for_node("p1").digest == image["digest"]
    _check_against_select(p, hosts, index)
    # no Slurm feature tells the runtimes apart: no constraint, with the reason (spec/plan.md)
    for v in p.variants():
        assert v.constraint is None and v.constraint_problem, v


def test_runtime_order_version_and_setuid_facts_make_classes(laptop):
    import compat
    from compat.host.profile import Runtime
    new = Runtime("apptainer", "1.3.4", setuid=True, allow_setuid=True)
    index = _index(_desc(1, {"org.hpc-compat.runtime": "apptainer>=1.3", "org.hpc-compat.runtime.needs": "setuid"}),
                   _desc(2, {"org.hpc-compat.runtime": "podman"}), _desc(3, {}))
    hosts = {"new": _with(laptop, new),
             "old": _with(laptop, new._replace(version="1.1.9")),
             "nosuid": _with(laptop, new._replace(allow_setuid=False)),
             "podfirst": _with(laptop, Runtime("podman", "4.9.3"), new),
             "appfirst": _with(laptop, new, Runtime("podman", "4.9.3"))}
    p = compat.plan(index, hosts)
    assert len(p.classes) == 5
    assert [p.for_node(n).digest[7:8] for n in ("new", "old", "nosuid", "podfirst", "appfirst")] == \
        ["1", "3", "3", "2", "1"]
    _check_against_select(p, hosts, index)


def test_rootless_facts_make_classes(laptop):
    import compat
    from compat.host.profile import Runtime
    rt = Runtime("podman", "4.9.3")
    index = _index(_desc(1, {"org.hpc-compat.runtime.needs": "userns"}), _desc(2, {}))
    hosts = {"yes": _with(laptop, rt, userns=True), "no": _with(laptop, rt, userns=False, max_user_namespaces=0)}
    p = compat.plan(index, hosts)
    assert len(p.classes) == 2
    assert (p.for_node("yes").digest[7:8], p.for_node("no").digest[7:8]) == ("1", "2")
    _check_against_select(p, hosts, index)


def test_class_key_blanks_only_the_runtime_path(laptop):
    from compat.host.profile import Runtime
    from compat.plan.classes import class_key
    rt = Runtime("apptainer", "1.3.4", "/usr/bin/apptainer", setuid=True, allow_setuid=True)
    h = _with(laptop, rt)
    assert class_key(h) == class_key(_with(laptop, rt._replace(path="/opt/bin/apptainer")))
    for other in (rt._replace(version="1.3.5"), rt._replace(setuid=False), rt._replace(allow_setuid=None),
                  rt._replace(name="singularity")):
        assert class_key(h) != class_key(_with(laptop, other)), other
    assert class_key(h) != class_key(h._replace(runtimes=None))
