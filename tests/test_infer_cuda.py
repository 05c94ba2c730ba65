"""CUDA inference: arch- and family-specific targets from real nvcc builds, the PTX ISA table
in data, and the version of a lone libcudart.so.N."""
import os
import re
import shutil
import subprocess

import pytest

import elf_build as B
from test_infer import CU_SRC, NVCC, image, infer, proposed, sh, wrap_index

from compat.infer import fatbin as F
from compat.match.gpu import EXACT, PTX, SAME_MAJOR, sass_fit
from compat.vocab.data import load
from compat.vocab.values import cuda_arch_list

need_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc not installed (the machine image ships it; skipped elsewhere)")


def _nvcc_codes():
    if NVCC is None:
        return set()
    out = subprocess.run([NVCC, "--list-gpu-code"], capture_output=True, text=True).stdout
    return set(out.split())


def _nvcc_release():
    out = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    return re.search(r"release (\d+\.\d+)", out).group(1)


# (gencode, the arch list nvcc wrote, what the matcher must then accept / refuse)
GENCODES = [
    ("arch=compute_90a,code=sm_90a", "sm_90a", {"9.0": EXACT}, ["8.9", "10.0", "12.0"]),
    ("arch=compute_90a,code=compute_90a", "compute_90a", {"9.0": PTX}, ["8.9", "10.0", "12.0"]),
    ("arch=compute_100f,code=sm_100f", "sm_100f", {"10.0": EXACT, "10.3": SAME_MAJOR}, ["9.0", "11.0", "12.0"]),
    ("arch=compute_120f,code=[sm_120f,compute_120f]", "sm_120f,compute_120f",
     {"12.0": EXACT, "12.1": SAME_MAJOR}, ["10.0", "11.0", "13.0"]),
    ("arch=compute_120a,code=[sm_120a,compute_120a]", "sm_120a,compute_120a", {"12.0": EXACT}, ["12.1", "10.0"]),
]


@need_nvcc
@pytest.mark.parametrize("gencode,arches,runs,refuses", GENCODES, ids=[g[1] for g in GENCODES])
def test_arch_and_family_specific_targets_keep_their_suffix(tmp_path, gencode, arches, runs, refuses):
    base = re.search(r"compute_(\d+)", gencode).group(1)
    if f"sm_{base}" not in _nvcc_codes():
        pytest.skip(f"this nvcc cannot build sm_{base}")
    (tmp_path / "k.cu").write_text(CU_SRC)
    sh(NVCC, "-gencode", gencode, "-o", "k", "k.cu", cwd=tmp_path)
    out = str(tmp_path / "l")
    image(out, "x", [{"opt/app/k": (tmp_path / "k").read_bytes()}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["gpu.cuda.arch"] == arches
    # what the proposal then means to the matcher: exactly the GPUs NVIDIA documents
    parsed = cuda_arch_list(arches)
    for cc, fit in runs.items():
        assert sass_fit(parsed, cc)[0] == fit, cc
    for cc in refuses:
        assert sass_fit(parsed, cc)[0] == 0, cc


def test_suffix_decoded_from_fatbin_entry_flags():
    # the flag bits nvcc writes (measured above on real builds): a = bit 20, f = bit 21
    entries = F.entries(B.fatbin([(2, 90, (1, 8), 0x11 | F.FLAG_ARCH_SPECIFIC, b"x" * 8),
                                  (2, 100, (1, 8), 0x11 | F.FLAG_FAMILY_SPECIFIC, b"x" * 8),
                                  (1, 120, (9, 0), 0x8011 | F.FLAG_FAMILY_SPECIFIC, b".version 9.0"),
                                  (2, 80, (1, 8), 0x11, b"x" * 8)]))
    assert [e.arch for e in entries] == ["sm_90a", "sm_100f", "compute_120f", "sm_80"]


@pytest.mark.parametrize("abi,eflags,arch", [
    (7, 0x5A | 0x800, "sm_90a"),      # CUDA 12 cubin: EF_CUDA_ACCELERATORS_V1 (LLVM BinaryFormat/ELF.h)
    (7, 0x5A, "sm_90"),
    (8, 0x5A08, "sm_90a"),            # ABI 8: EF_CUDA_ACCELERATORS
    (8, 0x6005A04, "sm_90"),          # what nvcc 13.0 writes for sm_90 and sm_90a alike
])
def test_cubin_e_flags_are_a_second_witness_of_arch_specific_code(abi, eflags, arch):
    note = B.struct.pack("<III", 8, 36, 1000) + b"NVIDIA\0\0" + b"Cuda compilation tools, release 12.8\0".ljust(36, b"\0")
    cubin = B.elf([(".note.nv.tkinfo", B.SHT_NOTE, note, 0)], machine=190, flags=eflags, abi=(0x33, abi))
    entry, = F.entries(B.fatbin([(2, 90, (1, 8), 0x11, cubin)]))
    assert (entry.arch, entry.toolkit) == (arch, "12.8")


def test_family_specific_ptx_is_not_portable_ptx():
    # compute_120f JIT-compiles on the 12.x family only, unlike compute_120
    assert sass_fit(cuda_arch_list("compute_120f"), "12.1")[0] == PTX
    assert sass_fit(cuda_arch_list("compute_120f"), "13.0")[0] == 0
    assert sass_fit(cuda_arch_list("compute_120"), "13.0")[0] == PTX


def test_ptx_table_is_data_with_a_source_and_current():
    table = load("cuda")["ptx_isa_cuda"]
    assert table["_source"]
    assert table["9.0"] == "13.0" and table["9.1"] == "13.1" and table["9.4"] == "13.4"
    assert table["8.6"] == "12.7"                       # no PTX ISA came with CUDA 12.6
    assert not hasattr(F, "PTX_TO_CUDA")                # one table, in data


@pytest.mark.parametrize("ptx,expect", [((9, 4), "13.4"), ((8, 4), "12.4")])
def test_ptx_isa_gives_the_cuda_release(tmp_path, ptx, expect):
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/lib/libk.so": B.with_fatbin([(1, 90, ptx, 0x8011, b".version")])}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["gpu.cuda.version"] == expect


def test_newer_ptx_than_the_table_says_so(tmp_path):
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/lib/libk.so": B.with_fatbin([(1, 90, (9, 9), 0x8011, b".version")])}])
    doc = infer(wrap_index(out, "x"))
    assert "gpu.cuda.version" not in doc[0]["proposed"]
    why = doc[0]["unknown"]["gpu.cuda.version"]
    assert why.startswith("PTX 9.9 is newer than compat's table"), why


CUDART = "/usr/local/cuda/lib64/libcudart.so"


@pytest.mark.skipif(not os.path.exists(CUDART) or NVCC is None, reason="no CUDA toolkit libcudart here")
def test_lone_libcudart_gives_its_version(tmp_path):
    real = os.path.realpath(CUDART)
    major = re.search(r"libcudart\.so\.(\d+)", os.path.basename(real)).group(1)
    out = str(tmp_path / "l")
    # as pip's nvidia-cuda-runtime wheel installs it: only the major version in the name
    where = f"usr/local/lib/python3.12/site-packages/nvidia/cuda_runtime/lib/libcudart.so.{major}"
    image(out, "x", [{where: open(real, "rb").read()}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["gpu.cuda.version"] == _nvcc_release()
    ev = doc[0]["proposed"]["gpu.cuda.version"]["evidence"][0]
    assert ev["file"] == "/" + where and "CUDART_VERSION" in ev["section"]


def test_libcudart_without_a_readable_version_is_unknown_with_the_major(tmp_path):
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/lib/libcudart.so.12": open(shutil.which("true"), "rb").read()}])
    doc = infer(wrap_index(out, "x"))
    assert "gpu.cuda.version" not in doc[0]["proposed"]
    assert "CUDA 12" in doc[0]["unknown"]["gpu.cuda.version"]
