"""The profile as JSON (schema, round trip, --host), --assume, and detect's CLI errors."""
import json
import os

import pytest

import compat
from compat.host.profile import Host
from compat.schema import full_errors
from conftest import HOSTS, detect_json, run_compat


@pytest.mark.parametrize("name", sorted(d for d in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, d))) + [None])
def test_detect_json_is_valid_against_the_schema(name):
    args = ["--sysroot", os.path.join(HOSTS, name)] if name else []
    prof = detect_json(*args)
    assert full_errors(prof, "host") == []


def test_round_trip_through_host_file(tmp_path):
    prof = detect_json("--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"))
    f = tmp_path / "node.json"
    f.write_text(json.dumps(prof))
    again = json.loads(run_compat("detect", "--json", "--host", str(f), check=0).stdout)
    assert again == prof
    assert Host.from_dict(prof).to_dict() == prof


def test_assume_overrides_and_says_so():
    h = compat.detect(sysroot=os.path.join(HOSTS, "laptop-tigerlake"),
                      assume=["cpu.target=zen4", "gpu.vendor=nvidia", "gpu.count=2", "gpu.cc=9.0",
                              "gpu.driver=550.54.14", "mpi.implementation=OpenMPI", "mpi.version=4.1.6",
                              "mpi.pmi=pmix", "fabric=infiniband", "fabric.providers=verbs,tcp"])
    assert (h.cpu.target, h.cpu.vendor, h.cpu.generic, h.os.variant) == ("zen4", "AuthenticAMD", "x86_64_v4", "v4")
    nv = [g for g in h.gpus if g.vendor == "nvidia"]
    assert len(nv) == 2 and nv[0].cc == "9.0" and nv[0].cuda == "12.4"   # CUDA from the driver branch
    assert [g.vendor for g in h.gpus if g.vendor != "nvidia"] == ["intel"]
    assert (h.mpi[0].implementation, h.mpi[0].version, h.mpi[0].abi) == ("openmpi", "4.1.6", "openmpi")
    assert h.pmi == ("pmix",) and h.fabric_types() == ("infiniband",)
    assert h.libfabric.providers == ("verbs", "tcp")
    assert h.sources["gpu.cc"] == "assumed (--assume gpu.cc=9.0)"


def test_assume_absences():
    h = compat.detect(sysroot=os.path.join(HOSTS, "nvidia-4xh100-nonvml"),
                      assume={"gpu.vendor": "none", "mpi.implementation": "none", "fabric": "tcp"})
    assert (h.gpus, h.mpi, h.fabrics) == ((), (), ())


def test_assume_arch_under_sysroot_wins_over_capture(tmp_path):
    h = compat.detect(sysroot=os.path.join(HOSTS, "efa-graviton3"), assume={"os.arch": "arm64"})
    assert h.os.arch == "arm64" and h.sources["os.arch"].startswith("assumed")


@pytest.mark.parametrize("args,needle", [
    (["--assume", "gpu.colour=red"], "unknown key"),
    (["--assume", "novalue"], "expected KEY=VALUE"),
    (["--assume", "gpu.cc=nine"], "wanted a compute capability"),
    (["--assume", "cpu.target=pentium9"], "wanted an archspec microarchitecture"),
    (["--sysroot", "/nonexistent/root"], "not a directory"),
    (["--host", "/nonexistent/node.json"], "No such file"),
])
def test_bad_input_is_one_line_exit_2(args, needle):
    proc = run_compat("detect", *args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_host_file_that_is_not_a_profile(tmp_path):
    f = tmp_path / "bad.json"
    f.write_text('{"schema": "something-else"}')
    proc = run_compat("detect", "--host", str(f))
    assert proc.returncode == 2 and "compat.host/v1" in proc.stderr


def test_compat_sysroot_env_equals_option():
    proc = run_compat("detect", "--json", env={"COMPAT_SYSROOT": os.path.join(HOSTS, "efa-graviton3")}, check=0)
    assert json.loads(proc.stdout)["cpu"]["target"] == "neoverse_v1"


def test_summary_is_readable():
    out = run_compat("detect", "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"), check=0).stdout
    assert "sapphirerapids" in out and "NVIDIA H100 80GB HBM3, cc 9.0" in out and "infiniband" in out


def test_under_sysroot_nothing_is_executed(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    marker = tmp_path / "ran"
    fake = d / "mpirun"
    fake.write_text(f"#!/bin/sh\ntouch {marker}\necho 'mpirun (Open MPI) 5.0.0'\n")
    fake.chmod(0o755)
    prof = detect_json("--sysroot", os.path.join(HOSTS, "laptop-tigerlake"), env={"PATH": f"{d}:/bin"})
    assert not marker.exists()
    assert prof["mpi"] == []
