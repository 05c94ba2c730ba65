"""The vocabulary: the parser, the JSON Schema and the spec describe the same keys."""
import os

import pytest

from compat.schema import full_errors, load_schema
from compat.vocab import annotations as A
from conftest import REPO

P = A.PREFIX


def test_schema_lists_exactly_the_parser_keys():
    enum = load_schema("annotations")["propertyNames"]["then"]["enum"]
    assert sorted(enum) == sorted(P + k for k in A.KEYS)
    assert sorted(load_schema("annotations")["properties"]) == sorted(enum)


def test_spec_documents_every_key():
    text = open(os.path.join(REPO, "spec", "vocabulary.md")).read()
    for k in A.KEYS:
        assert f"`{P}{k}`" in text or f"`P.{k}`" in text, k


GOOD = {"cpu.target": "zen4", "cpu.features": "avx512f, avx512bw", "cpu.vendor": "AuthenticAMD",
        "gpu.vendor": "NVIDIA", "gpu.cuda.version": "12.4", "gpu.cuda.arch": "sm_80,sm_90a,compute_90",
        "gpu.amd.arch": "gfx90a:xnack-,gfx942", "gpu.rocm.version": "6.0", "mpi.implementation": "OpenMPI",
        "mpi.version": "4.1.6", "mpi.abi": "mpich", "mpi.mode": "pmi", "mpi.pmi": "pmix,pmi2",
        "fabric": "infiniband,tcp", "fabric.providers": "verbs,tcp", "os.kernel": ">=5.10,<7",
        "libc.glibc": "2.35", "weight": "-3", "description": "anything at all"}
BAD = {"cpu.features": "", "gpu.vendor": "matrox", "gpu.cuda.version": "twelve", "gpu.cuda.arch": "sm_9x",
       "gpu.amd.arch": "navi", "mpi.implementation": "lam", "mpi.abi": "lam", "mpi.mode": "teleport",
       "mpi.pmi": "slurm", "fabric": "carrier-pigeon", "libc.glibc": "new", "weight": "heavy"}


@pytest.mark.parametrize("key", sorted(GOOD))
def test_good_values_pass_parser_and_schema(key):
    ann = {P + key: GOOD[key]}
    if key == "mpi.mode":
        ann[P + "mpi.pmi"] = "pmix"
    if key == "mpi.abi":
        ann[P + "mpi.implementation"] = "mpich"
    assert A.parse(ann).errors == ()
    assert full_errors(ann, "annotations") == []


@pytest.mark.parametrize("key", sorted(BAD))
def test_bad_values_fail_parser_and_schema(key):
    ann = {P + key: BAD[key]}
    assert A.parse(ann).errors and (P + key) in A.parse(ann).errors[0]
    assert full_errors(ann, "annotations")


def test_normalisation():
    r = A.parse({P + "mpi.implementation": "impi", P + "gpu.vendor": "NVIDIA", P + "cpu.vendor": "intel",
                 P + "fabric": "IB,OPA", P + "mpi.pmi": "PMI"})
    assert r.values["mpi.implementation"] == "intel-mpi" and r.values["gpu.vendor"] == "nvidia"
    assert r.values["cpu.vendor"] == "GenuineIntel" and r.values["fabric"] == ("infiniband", "omnipath")
    assert r.values["mpi.pmi"] == ("pmi1",)


def test_unknown_keys_are_collected_not_parsed():
    r = A.parse({P + "gpu.colour": "green", "org.opencontainers.image.title": "x"})
    assert r.unknown == (P + "gpu.colour",) and not r.values and not r.errors
    assert full_errors({P + "gpu.colour": "green"}, "annotations")


ARABIC_INDIC = "\u0669\u0660"      # "90" in Arabic-Indic digits: Python's \d and int() read it as 90


@pytest.mark.parametrize("key,value", [
    ("gpu.cuda.arch", f"sm_{ARABIC_INDIC}"), ("gpu.cuda.version", f"1{ARABIC_INDIC[0]}.0"),
    ("mpi.version", f"{ARABIC_INDIC}.1"), ("os.kernel", f">={ARABIC_INDIC}"), ("weight", ARABIC_INDIC),
])
def test_value_grammars_are_ascii(key, value):
    """A value is read as nvcc, NFD and the schema read it: only ASCII digits are digits."""
    ann = {P + key: value}
    assert A.parse(ann).errors, A.parse(ann).values
    assert full_errors(ann, "annotations")
