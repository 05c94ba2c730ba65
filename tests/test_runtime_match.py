"""The runtime dimension (spec/vocabulary.md "Runtimes"): `runtime` / `runtime.needs` values x
host facts (Host built here with Runtime and Rootless values, as the runtime-facts probes fill
them) -> state and reason, one row a case; which runtime runs the image; SIF artifacts only for
runtimes that run SIF; and the vocabulary's grammar, by examples and by hypothesis."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings, strategies as st

from compat.errors import BadInput, ValueProblem
from compat.host.profile import OS, Host, Rootless, Runtime
from compat.match import rank as rank_m, runtime as runtime_m
from compat.match.check import State
from compat.oci import media
from compat.schema import full_errors, load_schema
from compat.vocab import annotations as A, data, values as V

P = A.PREFIX

APPT = Runtime("apptainer", "1.3.4", path="/usr/bin/apptainer", setuid=True, allow_setuid=True)
PODMAN = Runtime("podman", "4.3.1", path="/usr/bin/podman")
ENROOT = Runtime("enroot", "3.4.1")
DOCKER = Runtime("docker", "24.0.7")
OPEN = Rootless(user="alice", max_user_namespaces=63432, unprivileged_userns_clone=True,
                apparmor_restrict_userns=False, userns=True, subuid=True, subgid=True, fuse=True,
                fuse_helpers=("squashfuse_ll", "fuse-overlayfs", "fusermount3"), overlay=True)
NO_USERNS_MAX = OPEN._replace(max_user_namespaces=0, userns=False)
NO_USERNS_CLONE = OPEN._replace(unprivileged_userns_clone=False, userns=False)
APPARMOR = OPEN._replace(apparmor_restrict_userns=True, userns=False)


def host(*runtimes, rootless=OPEN):
    return Host(os=OS(arch="amd64"), runtimes=tuple(runtimes), rootless=rootless)


def req(**ann):
    r = A.parse({P + k.replace("_", "."): v for k, v in ann.items()})
    assert not r.errors, r.errors
    return r


CASES = [
    # (annotations, host, state, reason fragment)
    ({}, host(), State.OK, ""),
    ({}, Host(), State.OK, ""),
    ({"runtime": "apptainer"}, host(APPT), State.OK, "runs with apptainer"),
    ({"runtime": "Apptainer >= 1.3"}, host(APPT), State.OK, "apptainer 1.3.4 >=1.3"),
    ({"runtime": "apptainer>=1.4"}, host(APPT), State.FAIL, "needs apptainer>=1.4; host has apptainer 1.3.4"),
    ({"runtime": "apptainer>=1.3,<2"}, host(APPT._replace(version="2.0.1")), State.FAIL, "needs apptainer>=1.3,<2"),
    ({"runtime": "apptainer<1.2, apptainer>=1.3"}, host(APPT), State.OK, "apptainer 1.3.4 >=1.3"),
    ({"runtime": "apptainer<1.2, apptainer>=1.3"}, host(APPT._replace(version="1.2.5")), State.FAIL,
     "needs apptainer<1.2 or apptainer>=1.3; host has apptainer 1.2.5"),
    ({"runtime": "apptainer>=1.3"}, host(APPT._replace(version=None)), State.UNKNOWN,
     "unknown: runtime.version (state it with --assume runtime=apptainer@X.Y)"),
    ({"runtime": "apptainer"}, host(APPT._replace(version=None)), State.OK, "runs with apptainer"),
    ({"runtime": "apptainer>=1.4"}, host(APPT._replace(version="1.4.0-rc.1")), State.OK, "apptainer 1.4.0 >=1.4"),
    ({"runtime": "singularity-ce>=3.11"}, host(Runtime("singularity", "4.1.0-jammy")), State.OK,
     "singularity 4.1.0 >=3.11"),
    ({"runtime": "podman"}, host(APPT, PODMAN), State.FAIL, "runs with podman; the image would run with apptainer"),
    ({"runtime": "podman,apptainer>=1.3"}, host(APPT, PODMAN), State.OK, "apptainer 1.3.4 >=1.3"),
    ({"runtime": "ch-run"}, host(Runtime("charliecloud", "0.38")), State.OK, "runs with charliecloud"),
    ({"runtime": "pyxis"}, host(ENROOT), State.OK, "runs with enroot"),
    ({"runtime": "apptainer"}, Host(), State.UNKNOWN, "unknown: runtime (name it with --runtime NAME"),
    ({"runtime": "apptainer"}, host(), State.UNKNOWN, "unknown: runtime"),
    ({"runtime_needs": "userns"}, host(), State.UNKNOWN, "unknown: runtime"),
    # user namespaces
    ({"runtime_needs": "userns"}, host(APPT), State.OK, "user namespaces"),
    ({"runtime_needs": "userns"}, host(APPT, rootless=NO_USERNS_MAX), State.FAIL, "user.max_user_namespaces = 0"),
    ({"runtime_needs": "userns"}, host(APPT, rootless=NO_USERNS_CLONE), State.FAIL,
     "kernel.unprivileged_userns_clone = 0"),
    ({"runtime_needs": "userns"}, host(APPT, rootless=APPARMOR), State.FAIL,
     "AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns = 1)"),
    ({"runtime_needs": "userns"}, host(APPT, rootless=None), State.UNKNOWN, "unknown: userns"),
    ({"runtime_needs": "userns"}, host(APPT, rootless=OPEN._replace(userns=None)), State.UNKNOWN, "unknown: userns"),
    # fakeroot
    ({"runtime_needs": "fakeroot"}, host(APPT), State.OK, "fakeroot (user namespaces, subuid and subgid ranges)"),
    ({"runtime_needs": "fakeroot"}, host(APPT, rootless=OPEN._replace(subuid=False)), State.FAIL,
     "fakeroot needs the user's range in /etc/subuid; alice has none"),
    ({"runtime_needs": "fakeroot"}, host(PODMAN, rootless=OPEN._replace(subgid=False)), State.FAIL, "/etc/subgid"),
    ({"runtime_needs": "fakeroot"}, host(APPT, rootless=OPEN._replace(subgid=None)), State.UNKNOWN, "unknown: subgid"),
    ({"runtime_needs": "fakeroot"}, host(APPT, rootless=NO_USERNS_MAX), State.FAIL,
     "fakeroot needs unprivileged user namespaces"),
    ({"runtime_needs": "fakeroot"}, host(APPT, rootless=OPEN._replace(userns=None)), State.UNKNOWN, "unknown: userns"),
    # FUSE: the device, and the helpers of that runtime
    ({"runtime_needs": "fuse"}, host(APPT), State.OK, "FUSE (squashfuse_ll)"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=OPEN._replace(fuse_helpers=("squashfuse",))), State.OK,
     "FUSE (squashfuse)"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=OPEN._replace(fuse_helpers=("fuse-overlayfs",))), State.FAIL,
     "apptainer mounts with squashfuse_ll or squashfuse; host has fuse-overlayfs"),
    ({"runtime_needs": "fuse"}, host(PODMAN), State.OK, "FUSE (fuse-overlayfs)"),
    ({"runtime_needs": "fuse"}, host(ENROOT, rootless=OPEN._replace(fuse_helpers=("squashfuse",))), State.FAIL,
     "enroot mounts with squashfuse and fuse-overlayfs"),
    ({"runtime_needs": "fuse"}, host(ENROOT, rootless=OPEN._replace(fuse_helpers=("squashfuse", "fuse-overlayfs"))),
     State.OK, "FUSE (squashfuse and fuse-overlayfs)"),
    ({"runtime_needs": "fuse"}, host(DOCKER, rootless=OPEN._replace(fuse_helpers=())), State.OK, "FUSE"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=OPEN._replace(fuse=False)), State.FAIL, "/dev/fuse is not usable"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=OPEN._replace(fuse=None)), State.UNKNOWN, "unknown: fuse"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=OPEN._replace(fuse_helpers=None)), State.OK,
     "FUSE (apptainer's squashfuse_ll or squashfuse not looked for)"),
    ({"runtime_needs": "fuse"}, host(APPT, rootless=Rootless(fuse=True)), State.OK, "FUSE (apptainer's"),
    # setuid
    ({"runtime_needs": "setuid"}, host(APPT), State.OK, "setuid"),
    ({"runtime_needs": "suid"}, host(APPT._replace(allow_setuid=False)), State.FAIL,
     "apptainer's configuration says allow setuid = no"),
    ({"runtime_needs": "setuid"}, host(APPT._replace(setuid=False)), State.FAIL, "apptainer installed setuid root"),
    ({"runtime_needs": "setuid"}, host(APPT._replace(setuid=None)), State.UNKNOWN, "unknown: setuid"),
    ({"runtime_needs": "setuid"}, host(APPT._replace(allow_setuid=None)), State.UNKNOWN,
     "unknown: setuid (apptainer's configuration was not read"),
    ({"runtime_needs": "setuid"}, host(PODMAN), State.UNKNOWN, "unknown: setuid"),
    # both keys: every part holds, the first that does not decides
    ({"runtime": "apptainer>=1.3", "runtime_needs": "userns,fuse"}, host(APPT), State.OK,
     "apptainer 1.3.4 >=1.3; user namespaces; FUSE (squashfuse_ll)"),
    ({"runtime": "apptainer>=1.3", "runtime_needs": "userns,fuse"}, host(APPT, rootless=APPARMOR), State.FAIL,
     "needs unprivileged user namespaces"),
    ({"runtime": "apptainer>=1.5", "runtime_needs": "userns"}, host(APPT, rootless=None), State.FAIL,
     "needs apptainer>=1.5"),
]


@pytest.mark.parametrize("annotations, h, state, fragment", CASES)
def test_runtime_matcher(annotations, h, state, fragment):
    c = runtime_m.check(req(**annotations), h)
    assert c.verdict is state, c
    assert fragment in c.reason, c.reason
    assert c.dimension == "runtime"


SIF = {"mediaType": media.OCI_MANIFEST, "artifactType": media.SIF_CONFIG, "digest": "sha256:" + "5" * 64,
       "size": 10, "platform": {"os": "linux", "architecture": "amd64"}}


@pytest.mark.parametrize("h, state, fragment", [
    (host(APPT), State.OK, "apptainer runs the SIF"),
    (host(Runtime("singularity", "4.1.0")), State.OK, "singularity runs the SIF"),
    (host(PODMAN, APPT), State.FAIL, "a SIF runs with apptainer or singularity; the image would run with podman"),
    (host(ENROOT), State.FAIL, "the image would run with enroot"),
    (Host(), State.UNKNOWN, "unknown: runtime (a SIF runs with apptainer or singularity: name it with --runtime"),
])
def test_a_sif_runs_only_with_a_runtime_that_runs_sif(h, state, fragment):
    c = runtime_m.for_sif(runtime_m.check(req(), h), h)
    assert c.verdict is state and fragment in c.reason, c


def test_every_runtime_runs_oci_images():
    """Why rank asks only about SIF artifacts: an OCI image runs with every runtime."""
    assert all("oci" in info["runs"] for info in data.runtimes().values())


def test_the_format_does_not_hide_a_failing_key():
    h = host(APPT)
    keys = runtime_m.check(req(runtime="apptainer>=9"), h)
    assert runtime_m.for_sif(keys, h) == keys and not keys.ok


def test_sif_descriptors_are_what_media_names_sif():
    assert media.is_sif(SIF) and not media.is_sif(dict(SIF, artifactType=None))


def test_a_mixed_index_ranks_the_sif_for_apptainer_only():
    oci = {"mediaType": media.OCI_MANIFEST, "digest": "sha256:" + "1" * 64, "size": 10,
           "platform": {"os": "linux", "architecture": "amd64"}}
    index = {"schemaVersion": 2, "manifests": [oci, dict(SIF, annotations={P + "weight": "1"})]}
    h = host(APPT, PODMAN)
    assert rank_m.rank(index, h, runtime="apptainer").best.digest == SIF["digest"]
    podman = rank_m.rank(index, h, runtime="podman")
    assert podman.best.digest == oci["digest"]
    assert "runtime: a SIF runs with apptainer or singularity" in podman.candidates[1].reason


# -- which runtime runs the image -----------------------------------------------------------------

def test_running_puts_the_named_runtime_first():
    h = host(APPT, PODMAN)
    assert runtime_m.running(h, None) is h
    assert [r.name for r in runtime_m.running(h, "podman").runtimes] == ["podman", "apptainer"]
    assert runtime_m.running(h, "podman").runtimes[0] == PODMAN
    assert runtime_m.running(h, "Singularity-CE").runtimes[0] == Runtime("singularity")    # named, not found
    assert runtime_m.running(Host(), "enroot").runtimes == (Runtime("enroot"),)
    with pytest.raises(BadInput, match="'rkt' is not a container runtime"):
        runtime_m.running(h, "rkt")


@pytest.mark.parametrize("fmt, name", [("apptainer", "apptainer"), ("podman", "podman"), ("enroot", "enroot"),
                                       ("ref", None), ("digest", None), ("json", None), (None, None)])
def test_the_runtime_a_format_names(fmt, name):
    assert runtime_m.for_format(fmt) == name


def test_rank_judges_for_the_named_runtime():
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": media.OCI_MANIFEST, "digest": "sha256:" + c * 64, "size": 10,
         "platform": {"os": "linux", "architecture": "amd64"}, "annotations": ann}
        for c, ann in (("1", {}), ("2", {P + "runtime": "apptainer>=1.3", P + "runtime.needs": "fuse"}),
                       ("3", {P + "runtime": "podman"}))]}
    h = host(APPT, PODMAN)
    assert rank_m.rank(index, h).best.digest[7:8] == "2"                      # the host's first: apptainer
    assert rank_m.rank(index, h, runtime="apptainer").best.digest[7:8] == "2"
    assert rank_m.rank(index, h, runtime="podman").best.digest[7:8] == "3"
    assert rank_m.rank(index, h, runtime="enroot").best.digest[7:8] == "1"    # only the generic one runs
    unknown = rank_m.rank(index, Host(os=OS(arch="amd64")))
    assert unknown.best.digest[7:8] == "1"
    assert [c.reason for c in unknown.candidates[1:]] == [
        "runtime: unknown: runtime (name it with --runtime NAME, or --format apptainer|podman|enroot)"] * 2


# -- the tables the dimension reads ---------------------------------------------------------------

def test_the_needs_the_vocabulary_names_are_the_ones_judged():
    assert set(runtime_m.NEEDS) == set(V.RUNTIME_NEEDS)


def test_every_fuse_helper_of_a_runtime_is_looked_for():
    for name, info in data.runtimes().items():
        for helpers in info.get("fuse", ()):
            assert set(helpers) <= set(data.fuse_helpers()), name


def test_every_format_a_runtime_pulls_is_a_select_format():
    from compat.oci.formats import FORMATS
    for name, info in data.runtimes().items():
        assert set(info["formats"]) <= set(FORMATS), name
    assert {f for info in data.runtimes().values() for f in info["formats"]} == {"apptainer", "podman", "enroot"}


def test_every_name_and_alias_is_read_by_the_parser_and_the_schema():
    for name, info in data.runtimes().items():
        for spelling in [name, *info["aliases"], name.upper(), *(a.replace("-", "_") for a in info["aliases"])]:
            assert V.runtime_name(spelling) == name
            assert full_errors({P + "runtime": spelling + ">=1.0"}, "annotations") == [], spelling


# -- the grammar ----------------------------------------------------------------------------------

@pytest.mark.parametrize("value, parsed", [
    ("apptainer", (("apptainer", ""),)),
    ("apptainer>=1.3,singularity>=3.11", (("apptainer", ">=1.3"), ("singularity", ">=3.11"))),
    ("apptainer>=1.3,<2, singularity >= 3.11 , podman", (("apptainer", ">=1.3,<2"), ("singularity", ">=3.11"),
                                                          ("podman", ""))),
    (" SingularityCE ~= 4.1 ,", (("singularity", "~=4.1"),)),
    ("apptainer==1.3.*,!=1.3.2", (("apptainer", "==1.3.*,!=1.3.2"),)),
])
def test_runtime_values(value, parsed):
    r = A.parse({P + "runtime": value})
    assert r.values["runtime"] == parsed and not r.errors
    assert full_errors({P + "runtime": value}, "annotations") == []


@pytest.mark.parametrize("value, message", [
    ("rkt", "'rkt' is not a container runtime"),
    (">=1.3", "'>=1.3' follows no runtime name"),
    ("apptainer>=five", "'apptainer>=five' is not a runtime name with an optional version range"),
    ("apptainer 1.3", "is not a runtime name with an optional version range"),
    ("apptainer&>=1.3", "is not a runtime name"),
    ("apptainer~=1", "apptainer~=1 is not a PEP 440 version range"),
    ("apptainer>=1.3.*", "is not a PEP 440 version range"),
    (" , ", "empty list"),
    ("apptainer" + ",<9" * 64, "more than 64 names and version clauses (limits.RUNTIME_ITEMS)"),
    ("apptainer>=\u0661.3", "is not a runtime name"),
])
def test_malformed_runtime_values_name_the_key_and_the_digest(value, message):
    digest = "sha256:" + "a" * 64
    r = A.parse({P + "runtime": value}, where=digest)
    assert len(r.errors) == 1 and r.errors[0].startswith(P + "runtime: ") and digest in r.errors[0], r.errors
    assert message in r.errors[0]


@pytest.mark.parametrize("value, parsed", [("userns", ("userns",)), ("FUSE, suid,fuse", ("fuse", "setuid")),
                                           ("fakeroot,userns", ("fakeroot", "userns"))])
def test_needs_values(value, parsed):
    assert A.parse({P + "runtime.needs": value}).values["runtime.needs"] == parsed
    assert full_errors({P + "runtime.needs": value}, "annotations") == []


@pytest.mark.parametrize("value", ["root", "", "userns;fuse", "gpu"])
def test_malformed_needs(value):
    r = A.parse({P + "runtime.needs": value})
    assert r.errors and r.errors[0].startswith(P + "runtime.needs: ")
    assert full_errors({P + "runtime.needs": value}, "annotations")


SPELLINGS = sorted({s for name, info in data.runtimes().items() for s in (name, *info["aliases"])})
OPS = ("==", "!=", "<=", ">=", "<", ">")
SPACE = st.sampled_from(["", " ", "  "])
VERSION = st.lists(st.integers(0, 99), min_size=1, max_size=3).map(lambda parts: ".".join(map(str, parts)))
CLAUSE = st.tuples(st.sampled_from(OPS), SPACE, VERSION)
ITEM = st.tuples(st.sampled_from(SPELLINGS), st.booleans(), SPACE, st.lists(CLAUSE, max_size=3))


def _spell(items):
    text, expected = [], []
    for spelling, upper, space, clauses in items:
        parts = [(spelling.upper() if upper else spelling) + space + "".join(clauses[0]) if clauses else spelling]
        parts += [op + sp + v for op, sp, v in clauses[1:]]
        text.append(" , ".join(parts) if space else ",".join(parts))
        expected.append((V.runtime_name(spelling), ",".join(op + v for op, _, v in clauses)))
    return ", ".join(text), tuple(expected)


@settings(max_examples=150, deadline=None, derandomize=True)
@given(st.lists(ITEM, min_size=1, max_size=4))
def test_written_lists_read_back(items):
    """Any list of runtimes with ranges, spelt with aliases, any case and spaces, reads back as
    (canonical name, the clauses joined with commas), and the schema accepts it too."""
    text, expected = _spell(items)
    assert V.runtime_list(text) == expected, text
    assert full_errors({P + "runtime": text}, "annotations") == [], text


ALPHABET = st.sampled_from(list("apodmn>=<!~,. 1239*&_-") + ["apptainer", "podman", ">=1.3", ",<2", "\u0663"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(ALPHABET, max_size=12).map("".join))
def test_any_text_is_read_or_refused_with_the_key_named(text):
    """Arbitrary text never crashes the grammar: a value or one error naming the key; a value
    written back in the canonical form reads as itself."""
    try:
        parsed = V.runtime_list(text, P + "runtime")
    except ValueProblem as exc:
        assert str(exc).startswith(P + "runtime")
        return
    canonical = ", ".join(name + spec for name, spec in parsed)
    assert V.runtime_list(canonical) == parsed
    assert re.fullmatch(load_schema("annotations")["properties"][P + "runtime"]["pattern"], canonical)
