"""Table-driven matcher tests in the style of containerd's compare_test.go: (annotations, host,
state, a fragment of the reason), one row a case, for the matchers that dispatch on kind (the
GPU matcher per vendor, the MPI matcher per mode)."""
from __future__ import annotations

import pytest

from compat.host.profile import GPU, MPI, OS, Host
from compat.match import gpu as gpu_m, mpi as mpi_m
from compat.match.check import State
from compat.vocab import annotations as A
from helpers import P

H100 = GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4")
MI250 = GPU("amd", 0, gfx="gfx90a", rocm="6.0.2")
OMPI4 = MPI("openmpi", "4.1.5", "openmpi")
MPICH = MPI("mpich", "4.1", "mpich")


def host(gpus=None, mpi=None, pmi=None, glibc="2.36"):
    return Host(os=OS(arch="amd64", glibc=glibc), gpus=gpus, mpi=mpi, pmi=pmi)


GPU_CASES = [
    # (annotations, host, state, reason fragment)
    ({}, host(gpus=(H100,)), State.OK, "CPU only (host GPUs unused)"),
    ({"gpu.vendor": "none"}, host(), State.OK, "CPU only"),
    ({"gpu.vendor": "nvidia"}, host(gpus=None), State.UNKNOWN, "unknown: gpu.vendor"),
    ({"gpu.vendor": "amd"}, host(gpus=(H100,)), State.FAIL, "needs an AMD GPU; host has none"),
    ({"gpu.cuda.version": "12.4"}, host(gpus=(H100,)), State.OK, "nvidia CUDA 12.4"),
    ({"gpu.cuda.version": "12.8"}, host(gpus=(H100,)), State.OK, "nvidia GPU present"),        # minor-version: a note
    ({"gpu.cuda.version": "13.0"}, host(gpus=(H100,)), State.FAIL, "needs CUDA 13.0"),
    ({"gpu.cuda.version": "12.4"}, host(gpus=(H100._replace(cuda=None, driver=None),)), State.UNKNOWN,
     "unknown: gpu.cuda.version"),
    ({"gpu.cuda.arch": "sm_90"}, host(gpus=(H100,)), State.OK, "exact SASS sm_90 for cc 9.0"),
    ({"gpu.cuda.arch": "sm_80,compute_80"}, host(gpus=(H100,)), State.OK, "PTX JIT"),
    ({"gpu.cuda.arch": "sm_70"}, host(gpus=(H100,)), State.FAIL, "host GPU 0 is 9.0, image has sm_70"),
    ({"gpu.cuda.arch": "sm_90"}, host(gpus=(H100._replace(cc=None),)), State.UNKNOWN, "unknown: gpu.cc"),
    ({"gpu.amd.arch": "gfx90a"}, host(gpus=(MI250,)), State.OK, "amd gfx90a listed"),
    ({"gpu.amd.arch": "gfx942"}, host(gpus=(MI250,)), State.FAIL, "host GPU 0 is gfx90a; image has gfx942"),
    ({"gpu.amd.arch": "gfx90a"}, host(gpus=(MI250._replace(gfx=None),)), State.UNKNOWN, "unknown: gpu.amd.arch"),
    ({"gpu.rocm.version": "6.0"}, host(gpus=(MI250,)), State.OK, "ROCm 6.0 <= 6.0.2"),
    ({"gpu.rocm.version": "6.2"}, host(gpus=(MI250,)), State.FAIL, "needs ROCm 6.2; host has 6.0.2"),
    ({"gpu.vendor": "amd", "gpu.rocm.version": "6.0"}, host(gpus=(MI250._replace(rocm=None),)), State.UNKNOWN,
     "unknown: gpu.rocm.version"),
]

MPI_CASES = [
    ({}, host(mpi=(OMPI4,)), State.OK, ""),
    ({"mpi.implementation": "none"}, host(mpi=(OMPI4,)), State.OK, "no MPI"),
    ({"mpi.implementation": "openmpi"}, host(mpi=None), State.OK, "host MPI unknown; ranks only"),
    ({"mpi.implementation": "openmpi", "mpi.version": "4.1.5"}, host(mpi=(OMPI4,)), State.OK,
     "same MPI and version"),
    ({"mpi.implementation": "mpich"}, host(mpi=(OMPI4,)), State.OK, "no matching host MPI; ranks only"),
    ({"mpi.mode": "pmi", "mpi.pmi": "pmix"}, host(pmi=("pmi2", "pmix")), State.OK, "pmi mode via pmix"),
    ({"mpi.mode": "pmi", "mpi.pmi": "pmix"}, host(pmi=("pmi2",)), State.FAIL, "the host launcher offers pmi2"),
    ({"mpi.mode": "pmi", "mpi.pmi": "pmix"}, host(pmi=None), State.UNKNOWN, "unknown: mpi.pmi"),
    ({"mpi.mode": "bind", "mpi.implementation": "mpich"}, host(mpi=None), State.UNKNOWN,
     "unknown: mpi.implementation"),
    ({"mpi.mode": "bind", "mpi.implementation": "mpich"}, host(mpi=()), State.FAIL,
     "bind mode needs a host MPI (mpich); host has none"),
    ({"mpi.mode": "bind", "mpi.implementation": "intel-mpi"}, host(mpi=(MPICH,)), State.OK,
     "bind host mpich 4.1 (ABI mpich)"),
    ({"mpi.mode": "bind", "mpi.implementation": "mpich", "mpi.version": "4.2"}, host(mpi=(MPICH,)), State.FAIL,
     "needs a host MPI of ABI mpich >= 4.2"),
    ({"mpi.mode": "hybrid", "mpi.implementation": "openmpi", "mpi.version": "4.1.2"}, host(mpi=(OMPI4,)),
     State.OK, "hybrid with host openmpi 4.1.5"),
    ({"mpi.mode": "hybrid", "mpi.implementation": "openmpi", "mpi.version": "5.0.3"}, host(mpi=(OMPI4,)),
     State.FAIL, "needs Open MPI of the same major version"),
    ({"mpi.mode": "hybrid", "mpi.abi": "mpich"}, host(mpi=(OMPI4, MPICH)), State.OK, "hybrid with host mpich"),
]


def _req(annotations):
    req = A.parse({P + k: v for k, v in annotations.items()})
    assert not req.errors, req.errors
    return req


@pytest.mark.parametrize("annotations, h, state, fragment", GPU_CASES)
def test_gpu_matcher(annotations, h, state, fragment):
    c = gpu_m.check(_req(annotations), h)
    assert (c.verdict, fragment in c.reason) == (state, True), c


@pytest.mark.parametrize("annotations, h, state, fragment", MPI_CASES)
def test_mpi_matcher(annotations, h, state, fragment):
    c = mpi_m.check(_req(annotations), h)
    assert (c.verdict, fragment in c.reason) == (state, True), c


def test_bind_mode_notes_an_older_image_glibc():
    c = mpi_m.check(_req({"mpi.mode": "bind", "mpi.implementation": "mpich", "libc.glibc": "2.31"}),
                    host(mpi=(MPICH,), glibc="2.36"))
    assert c.ok and "built against glibc 2.36" in c.note
