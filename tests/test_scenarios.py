"""Scenario suite: the demo index of an MPI+CUDA application (fixtures/demo, 15 variants and
an attestation) against host profiles from real captures; each with the expected variant
and the reason that decided it."""
import json
import os

import archspec
import pytest

import compat
from conftest import FIXTURES, HOSTS, shared_data

import sys
sys.path.insert(0, FIXTURES)
from build_demo import VARIANTS  # noqa: E402

CORPUS = os.path.join(os.path.dirname(archspec.__file__), "json", "tests", "targets")
DEMO = "oci:" + os.path.join(FIXTURES, "demo")


def capture_root(tmp_path, path):
    (tmp_path / "proc").mkdir(exist_ok=True)
    (tmp_path / "proc" / "cpuinfo").write_text(open(path).read())
    return str(tmp_path)


def nvidia(cc, driver, count=1):
    return ["gpu.vendor=nvidia", f"gpu.cc={cc}", f"gpu.driver={driver}", f"gpu.count={count}"]


NO = ["mpi.implementation=none", "fabric=tcp", "gpu.vendor=none"]

# name: (capture: fixture dir | archspec corpus file | util-linux file, assume, expected, reason)
SCENARIOS = {
    "laptop": ("hosts:laptop-tigerlake", [], "x86-64-v3", "x86_64_v3 (platform variant) <= icelake"),
    "skylake-cluster": ("corpus:linux-rhel7-skylake_avx512",
                        ["fabric=infiniband", "mpi.implementation=openmpi", "mpi.version=4.1.5", "gpu.vendor=none"],
                        "openmpi-ib", "native verbs provider on infiniband"),
    "zen4-h100": ("hosts:ib-hdr-zen4", nvidia("9.0", "550.54.14", 4), "cuda12.4", "exact SASS sm_90"),
    "grace-hopper": ("corpus:linux-ubuntu22.04-neoverse_v2", nvidia("9.0", "550.54.14") + ["fabric=infiniband"],
                     "grace-hopper", "exact SASS sm_90"),
    "a64fx": ("corpus:linux-rocky8-a64fx", NO, "a64fx", "a64fx <= a64fx"),
    "efa-graviton3": ("hosts:efa-graviton3", ["gpu.vendor=none"], "neoverse_v1-efa", "native efa provider on efa"),
    "efa-x86-intel-mpi": ("corpus:linux-ubuntu20.04-zen3",
                          ["fabric=efa", "mpi.implementation=intel-mpi", "mpi.version=2021.12", "gpu.vendor=none"],
                          "mpich-efa", "bind host intel-mpi 2021.12 (ABI mpich)"),
    "slingshot": ("hosts:slingshot-zen3", ["gpu.vendor=none"], "mpich-cxi", "native cxi provider on slingshot"),
    "vm-hiding-avx": ("util:vbox-win.cpuinfo", NO, "generic", "no CPU requirement"),
    "old-driver-a100": ("corpus:linux-ubuntu20.04-zen3", nvidia("8.0", "470.57.02") + NO[:2], "cuda11.8",
                        "exact SASS sm_80"),
    "spr-a100-r535": ("corpus:linux-unknown-sapphirerapids", nvidia("8.0", "535.161.08") + NO[:2], "cuda11.8",
                      "CUDA 11.8 <= driver's 12.2"),
    "v100": ("corpus:linux-rhel7-skylake_avx512", nvidia("7.0", "550.54.14") + NO[:2], "cuda11.8",
             "exact SASS sm_70"),
    "l40": ("corpus:linux-rocky8.5-zen4", nvidia("8.9", "550.54.14") + NO[:2], "cuda12.4", "same-major SASS sm_80"),
    "b200-ptx": ("corpus:linux-rocky9-zen5", nvidia("10.0", "570.124.06") + NO[:2], "cuda12.4", "PTX JIT compute_90"),
    "roce-mpich": ("hosts:roce-cascadelake", ["gpu.vendor=none"], "x86-64-v3",
                   "x86_64_v3 (platform variant) <= cascadelake"),
    "zen3-no-mpi": ("corpus:linux-ubuntu20.04-zen3", NO, "zen3", "zen3 <= zen3"),
    "zen4-cpu": ("corpus:linux-rocky8.5-zen4", NO, "zen4", "zen4 <= zen4"),
    "spr-cpu": ("corpus:linux-unknown-sapphirerapids", NO, "sapphirerapids", "sapphirerapids <= sapphirerapids"),
    "tcp-openmpi": ("corpus:linux-rhel7-haswell", ["fabric=tcp", "mpi.implementation=openmpi",
                                                   "mpi.version=4.1.4", "gpu.vendor=none"],
                    "openmpi-tcp", "hybrid with host openmpi 4.1.4"),
}


def make_host(tmp_path, capture, assume):
    kind, name = capture.split(":", 1)
    if kind == "hosts":
        root = os.path.join(HOSTS, name)
    elif kind == "corpus":
        root = capture_root(tmp_path, os.path.join(CORPUS, name))
    else:
        root = capture_root(tmp_path, shared_data("util-linux-lscpu", name))
    return compat.detect(sysroot=root, assume=assume)


def names_by_digest():
    top = json.load(open(os.path.join(FIXTURES, "demo", "index.json")))["manifests"][0]["digest"]
    index = json.load(open(os.path.join(FIXTURES, "demo", "blobs", "sha256", top[7:])))
    return {m["digest"]: v[0] for m, v in zip(index["manifests"], VARIANTS)}


def test_there_are_enough_scenarios():
    assert len(SCENARIOS) >= 12 and len(VARIANTS) >= 10


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario(tmp_path, name):
    capture, assume, expected, reason = SCENARIOS[name]
    host = make_host(tmp_path, capture, assume)
    sel = compat.select(DEMO, host=host)
    assert names_by_digest()[sel.digest] == expected, [(names_by_digest().get(c.digest), c.verdict, c.reason)
                                                      for c in sel.candidates]
    assert reason in sel.chosen.reason
    # every other candidate was decided too, with a reason
    assert all(c.reason for c in sel.candidates)
    assert sel.candidates[-1].verdict == "skipped"   # the attestation is never a candidate


def test_old_driver_is_minor_version_compatible_with_a_note(tmp_path):
    host = make_host(tmp_path, *SCENARIOS["old-driver-a100"][:2])
    sel = compat.select(DEMO, host=host)
    assert any("minor-version compatibility" in n for n in sel.chosen.notes)
    cuda124 = [c for c in sel.candidates if names_by_digest().get(c.digest) == "cuda12.4"][0]
    assert cuda124.verdict == "incompatible" and "needs CUDA 12.4" in cuda124.reason


def test_no_candidate_exit_3_lists_every_candidate(tmp_path):
    from conftest import run_compat
    proc = run_compat("select", DEMO, "--assume", "os.arch=riscv64", "--assume", "cpu.target=u74mc")
    assert proc.returncode == 3
    lines = proc.stderr.strip().splitlines()
    assert lines[0].startswith("compat: no compatible image")
    assert len(lines) == 1 + 16
    assert "linux/amd64 is not linux/riscv64" in proc.stderr
