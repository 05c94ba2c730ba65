"""MPI detection with Debian's real Open MPI and MPICH, and recorded texts of others."""
import os
import shutil
import stat
import subprocess

import pytest

from compat.host.mpi import normalise_pmi, parse_version_text
from conftest import detect_json

need_ompi = pytest.mark.skipif(not shutil.which("mpirun.openmpi"), reason="openmpi-bin not installed")
need_mpich = pytest.mark.skipif(not shutil.which("mpirun.mpich"), reason="mpich not installed")


def deb_version(pkg):
    out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True)
    return out.stdout.split("-")[0].split(":")[-1]


def path_with(tmp_path, **links):
    d = tmp_path / "bin"
    d.mkdir(exist_ok=True)
    for name, target in links.items():
        os.symlink(target, d / name)
    return f"{d}:/usr/bin:/bin"


@need_ompi
@need_mpich
@pytest.mark.parametrize("which,impl,pkg", [("mpirun.openmpi", "openmpi", "openmpi-bin"),
                                            ("mpirun.mpich", "mpich", "mpich")])
def test_both_installed_the_mpirun_on_path_comes_first(tmp_path, which, impl, pkg):
    path = path_with(tmp_path, mpirun=shutil.which(which))
    prof = detect_json(env={"PATH": path})
    first = prof["mpi"][0]
    assert first["implementation"] == impl
    assert first["version"] == deb_version(pkg)
    assert first["abi"] == {"openmpi": "openmpi", "mpich": "mpich"}[impl]
    assert first["launcher"] == str(tmp_path / "bin" / "mpirun")
    # the other MPI is still found, through its library's MPI_Get_library_version
    impls = {m["implementation"]: m for m in prof["mpi"]}
    assert set(impls) == {"openmpi", "mpich"}
    assert impls["mpich"]["library"] == "libmpich.so.12"
    assert impls["openmpi"]["library"] == "libmpi.so.40"


@need_mpich
def test_hydra_reports_pmi(tmp_path):
    hydra = shutil.which("mpiexec.hydra") or shutil.which("mpirun.mpich")
    path = path_with(tmp_path, mpirun=hydra, mpiexec=hydra)
    prof = detect_json(env={"PATH": path})
    assert prof["mpi"][0]["pmi"] == ["pmi1", "pmi2"]


@need_ompi
def test_library_version_string_from_a_real_call(tmp_path):
    prof = detect_json(env={"PATH": path_with(tmp_path)})
    ompi = [m for m in prof["mpi"] if m["implementation"] == "openmpi"][0]
    assert "MPI_Get_library_version(libmpi.so.40)" in prof["sources"]["mpi"]
    assert ompi["version"] == deb_version("openmpi-bin")


RECORDED = {
    "intel-mpi": ("Intel(R) MPI Library for Linux* OS, Version 2021.12 Build 20240213 (id: 4f55822)\n"
                  "Copyright 2003-2024, Intel Corporation.\n", "2021.12"),
    "mvapich": ("MVAPICH2 Version:     \t2.3.7\nMVAPICH2 Release date:\tWed March 02 22:00:00 EST 2022\n"
                "MVAPICH2 Device:      \tch3:mrail\n", "2.3.7"),
    "openmpi": ("mpirun (Open MPI) 5.0.6\n\nReport bugs to https://www.open-mpi.org/community/help/\n", "5.0.6"),
    "mpich": ("HYDRA build details:\n    Version:                                 4.2.1\n"
              "    Process Manager:                         pmi\n", "4.2.1"),
}


@pytest.mark.parametrize("impl", sorted(RECORDED))
def test_recorded_version_texts_through_fake_executables(tmp_path, impl):
    text, version = RECORDED[impl]
    d = tmp_path / "bin"
    d.mkdir()
    fake = d / "mpirun"
    fake.write_text("#!/bin/sh\ncat <<'EOF'\n" + text + "EOF\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    prof = detect_json(env={"PATH": f"{d}:/bin", "LD_LIBRARY_PATH": str(tmp_path)})
    first = prof["mpi"][0]
    assert (first["implementation"], first["version"]) == (impl, version)
    assert first["abi"] == ("openmpi" if impl == "openmpi" else "mpich")


def test_cray_mpich_from_its_environment(tmp_path):
    prof = detect_json(env={"PATH": "/bin", "CRAY_MPICH_VERSION": "8.1.28",
                            "CRAY_MPICH_DIR": "/opt/cray/pe/mpich/8.1.28/ofi/gnu/12.3"})
    cray = [m for m in prof["mpi"] if m["implementation"] == "cray-mpich"][0]
    assert (cray["version"], cray["abi"]) == ("8.1.28", "mpich")


def test_srun_mpi_list(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    srun = d / "srun"
    srun.write_text("#!/bin/sh\nprintf 'MPI plugin types are...\\n\\tnone\\n\\tcray_shasta\\n\\tpmi2\\n"
                    "\\tpmix\\nspecific pmix plugin versions available: pmix_v4\\n'\n")
    srun.chmod(0o755)
    prof = detect_json(env={"PATH": f"{d}:/bin"})
    assert prof["pmi"] == ["pmi2", "pmix"]
    assert prof["sources"]["pmi"].endswith("--mpi=list")


def test_parse_is_not_fooled_by_unrelated_text():
    assert parse_version_text("bash: mpirun: command not found") is None
    assert normalise_pmi(["pmix_v3", "pmix_v5", "pmi2", "none"]) == ("pmix", "pmi2")


def test_broken_mpirun_does_not_crash_detection(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    bad = d / "mpirun"
    bad.write_text("#!/bin/sh\nsleep 30\n")   # hangs: the probe's timeout must cut it
    bad.chmod(0o755)
    prof = detect_json(env={"PATH": f"{d}:/bin", "LD_LIBRARY_PATH": str(tmp_path)})
    assert isinstance(prof["mpi"], list)


def test_probe_tools_libfabric_and_ucx_from_recorded_outputs(tmp_path):
    """fi_info and ucx_info answers (shapes of libfabric 1.17 and UCX 1.13), behind --probe-tools."""
    d = tmp_path / "bin"
    d.mkdir()
    (d / "fi_info").write_text("#!/bin/sh\ncase \"$1\" in\n--version) printf 'fi_info: 1.17.0\\nlibfabric: 1.17.0\\n"
                               "libfabric api: 1.17\\n';;\n-l) printf 'verbs:\\n\\tversion: 117.0\\ntcp:\\n\\tversion: 117.0\\n"
                               "ofi_hook_noop:\\n\\tversion: 117.0\\n';;\nesac\n")
    (d / "ucx_info").write_text("#!/bin/sh\ncase \"$1\" in\n-v) printf '# Version 1.13.1\\n# Git branch v1.13.x, revision 09d5d5b\\n';;\n"
                                "-d) printf '#      Transport: rc_mlx5\\n#         Device: mlx5_0:1\\n#      Transport: tcp\\n"
                                "#         Device: eth0\\n';;\nesac\n")
    for f in d.iterdir():
        f.chmod(0o755)
    plain = detect_json(env={"PATH": f"{d}:/bin"})
    assert plain["libfabric"] is None and plain["ucx"] is None
    prof = detect_json("--probe-tools", env={"PATH": f"{d}:/bin"})
    assert prof["libfabric"] == {"version": "1.17.0", "providers": ["verbs", "tcp"]}
    assert prof["ucx"] == {"version": "1.13.1", "transports": ["rc_mlx5", "tcp"]}
