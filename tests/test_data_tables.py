"""Every table of knowledge in compat/data/*.json: one JSON Schema each (as archspec keeps one
beside microarchitectures.json), a ``_source`` naming where the facts come from, and the
accessors of compat.vocab.data reading them (the one place code reads a table)."""
from __future__ import annotations

import json
import pathlib

import jsonschema
import pytest

from compat.vocab import data

DATA = pathlib.Path(data.DATA_DIR)

SOURCE = {"type": "string", "minLength": 20}
VERSION = {"type": "string", "pattern": r"^[0-9]+\.[0-9]+$"}
HEX4 = {"type": "string", "pattern": "^[0-9a-f]{4}$"}
NAME = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$"}
STRINGS = {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True}


def table(values, keys=None):
    """An object of ``values`` (keys matching ``keys``), with an optional ``_source``/``_note``."""
    return {"type": "object", "minProperties": 1,
            "properties": {"_source": SOURCE, "_note": SOURCE},
            "patternProperties": {keys or "^[^_]": values}, "additionalProperties": False}


def document(**properties):
    return {"type": "object", "required": ["_source", *properties], "additionalProperties": False,
            "properties": {"_source": SOURCE, **properties}}


SCHEMAS = {
    "aliases": document(
        keys=table({"type": "string", "pattern": r"^[a-z]+(\.[a-z0-9_]+)+$"}),
        implies=table(table({"type": "string"})),
        values=table(table({"type": ["string", "null"]}))),
    "architectures": document(aliases=table(NAME), families=table(NAME)),
    "arm_levels": document(levels={"type": "array", "minItems": 1, "items": {
        "type": "object", "required": ["name", "hwcaps"], "additionalProperties": False,
        "properties": {"name": NAME, "hwcaps": STRINGS}}}),
    "cpu_vendors": document(nfd=table({"type": "string", "minLength": 1})),
    "slurm_features": document(
        mpi=table({"type": "string", "pattern": "^[a-z0-9_.-]{1,32}$"}),
        fabric=table({"type": "string", "pattern": "^[a-z0-9_.-]{1,32}$"}),
        pmi={"type": "array", "minItems": 1, "items": {"type": "string", "pattern": "^[a-z0-9]+$"}}),
    "cuda": document(
        minor_version_floor=table({"type": "string", "pattern": r"^[0-9]+(\.[0-9]+){1,2}$"}, "^[0-9]+$"),
        driver_branch_cuda=table(VERSION, "^[0-9]+$"),
        dropped_sass_majors=table({"type": "array", "items": VERSION}, "^[0-9]+$"),
        ptx_isa_cuda=table(VERSION, r"^[0-9]+\.[0-9]+$")),
    "fabrics": document(
        fabrics=table({"type": "object", "required": ["providers", "drivers"], "additionalProperties": False,
                       "properties": {"providers": STRINGS, "drivers": STRINGS}}),
        intra_node_providers=STRINGS),
    "mpi": document(
        implementations=table({"type": "object", "required": ["abi", "aliases"], "additionalProperties": False,
                               "properties": {"abi": {"type": ["string", "null"]}, "aliases": STRINGS}}),
        abis=table({"type": "object", "required": ["aliases"], "additionalProperties": False,
                    "properties": {"aliases": STRINGS}}),
        pmi=STRINGS,
        sonames=table({"type": "string"}, r"^lib[a-z_]+\.so(\.[0-9]+)?$")),
    "nfd_cpuid": document(linux_to_nfd=table({"type": "string", "pattern": "^[A-Z0-9_]+$"})),
    "nvidia_pci": document(devices=table({
        "type": "object", "required": ["name", "cc"], "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "cc": VERSION}}, "^0x[0-9a-f]{4}$")),
    "pci": document(
        gpus=table({"type": "object", "required": ["vendor", "classes"], "additionalProperties": False,
                    "properties": {"vendor": HEX4, "classes": {"type": "array", "items": HEX4, "minItems": 1}}}),
        fabrics=table({"type": "object", "required": ["vendor", "class"], "additionalProperties": False,
                       "properties": {"vendor": HEX4, "class": HEX4}})),
    "runtimes": document(
        runtimes=table({"type": "object", "required": ["executables", "version_args", "runs", "aliases", "formats"],
                        "additionalProperties": False,
                        "properties": {"executables": STRINGS, "version_args": STRINGS,
                                       "runs": {"type": "array", "minItems": 1, "items": {"enum": ["oci", "sif"]}},
                                       "config": STRINGS, "starter_suid": STRINGS,
                                       "aliases": {"type": "array", "uniqueItems": True,
                                                   "items": {"type": "string", "pattern": "^[a-z][a-z0-9-]*$"}},
                                       "formats": {"type": "array", "uniqueItems": True,
                                                   "items": {"enum": ["apptainer", "podman", "enroot"]}},
                                       "fuse": {"type": "array", "minItems": 1,
                                                "items": {**STRINGS, "minItems": 1}}}}, "^[a-z]+$"),
        fuse_helpers=STRINGS, _note=SOURCE,
        bin_dirs={"type": "array", "items": {"type": "string", "pattern": "^/[a-z/]+$"}, "uniqueItems": True},
        packages=table(STRINGS, "^[a-z]+$"),
        version_variable=table({"type": "string", "pattern": "^[A-Z_]+$"}, "^[a-z]+$"),
        config_defaults=table({"type": "string"}, "^[a-z ]+$")),
    "platform_features": {"type": "object", "required": ["_source"], "properties": {"_source": SOURCE},
                          "additionalProperties": table({"type": "string"}, "^[a-z0-9_.]+$")},
}


def test_every_table_has_a_schema():
    assert sorted(p.stem for p in DATA.glob("*.json")) == sorted(SCHEMAS)


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_table_matches_its_schema(name):
    doc = json.loads((DATA / f"{name}.json").read_text())
    jsonschema.Draft202012Validator.check_schema(SCHEMAS[name])
    jsonschema.validate(doc, SCHEMAS[name])


@pytest.mark.parametrize("name, broken", [
    ("mpi", lambda d: d.pop("_source")),
    ("mpi", lambda d: d["sonames"].update({"libmpi.so.40": 40})),
    ("pci", lambda d: d["gpus"]["nvidia"].update(vendor="0x10de")),
    ("architectures", lambda d: d["families"].update({"amd64": ""})),
    ("fabrics", lambda d: d["fabrics"]["efa"].pop("drivers")),
])
def test_schema_refuses_a_broken_table(name, broken):
    doc = json.loads((DATA / f"{name}.json").read_text())
    broken(doc)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMAS[name])


def test_accessors_read_the_tables():
    assert data.arch_aliases()["x86_64"] == "amd64" and "_source" not in data.arch_aliases()
    assert data.machine_archs()["aarch64"] == "arm64" and data.machine_archs()["arm64"] == "arm64"
    assert data.arch_families()["amd64"] == "x86_64"
    assert list(data.mpi_sonames())[0] == "libmpi.so.40"          # the probe's order
    assert data.gpu_pci()["nvidia"]["vendor"] == "10de"
    assert data.gpu_pci_classes() == ("0300", "0302", "0380", "1200")
    assert data.fabric_pci()["infiniband"] == {"vendor": "15b3", "class": "0207"}
    assert data.fabric_drivers("omnipath") == ("hfi1",) and data.fabric_drivers("nope") == ()
    assert data.nfd_cpu_vendors()["AuthenticAMD"] == "AMD"
    assert data.runtimes()["charliecloud"]["executables"] == ["ch-run"] and "_source" not in data.runtimes()
    assert "squashfuse" in data.fuse_helpers()
    assert data.runtime_files()["packages"]["podman"] == ["podman"] and "/usr/bin" in data.runtime_files()["bin_dirs"]
    assert set(data.runtime_files()["packages"]) == set(data.runtimes())


def test_no_table_is_copied_into_code():
    """The literals of the tables appear in compat/ only in compat/data (and in prose)."""
    needles = ('"libmpi.so.40"', '"0x10de"', '"10de"', '"15b3"', '"GenuineIntel": "Intel"', '"x86-64": "amd64"',
               '"ppc64le": "ppc64le"', '"amd64": "x86_64"', '"aarch64": "arm64"', '"0x8086"', '"0x1002"')
    hits = []
    for path in pathlib.Path(data.__file__).parent.parent.rglob("*.py"):
        text = path.read_text()
        hits += [f"{path.name}: {n}" for n in needles if n in text]
    assert hits == []
