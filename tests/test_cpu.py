"""CPU detection against real /proc/cpuinfo captures: archspec's corpus and util-linux's."""
import os
import shutil

import archspec
import archspec.cpu
import pytest

import compat
from compat.host.cpu import arm_level_from_hwcaps
from compat.vocab.data import machine_archs
from conftest import run_compat, shared_data

CORPUS = os.path.join(os.path.dirname(archspec.__file__), "json", "tests", "targets")
LINUX = sorted(n for n in os.listdir(CORPUS) if n.startswith(("linux-", "bgq-")))


def sysroot_with(tmp_path, cpuinfo_file):
    (tmp_path / "proc").mkdir()
    shutil.copyfile(cpuinfo_file, tmp_path / "proc" / "cpuinfo")
    return str(tmp_path)


def test_corpus_is_there():
    assert len(LINUX) >= 40


@pytest.mark.parametrize("name", LINUX)
def test_archspec_corpus_gives_archspec_expected_target(tmp_path, name):
    expected = name.split("-")[-1]
    family = archspec.cpu.TARGETS[expected].family.name
    root = sysroot_with(tmp_path, os.path.join(CORPUS, name))
    host = compat.detect(sysroot=root, assume={"os.arch": machine_archs()[family]})
    assert host.cpu.target == expected
    assert host.cpu.family == family
    assert host.os.arch == machine_archs()[family]


@pytest.mark.parametrize("name", [n for n in LINUX if "power" not in n])
def test_architecture_inferred_from_capture_shape(tmp_path, name):
    """Without --assume os.arch the cpuinfo format tells x86, Arm and RISC-V apart."""
    expected = name.split("-")[-1]
    root = sysroot_with(tmp_path, os.path.join(CORPUS, name))
    host = compat.detect(sysroot=root)
    assert host.cpu.target == expected
    assert "shape of" in host.sources["os.arch"]


def test_power_capture_defaults_to_little_endian(tmp_path):
    root = sysroot_with(tmp_path, os.path.join(CORPUS, "linux-rhel8-power9"))
    host = compat.detect(sysroot=root)
    assert host.os.arch == "ppc64le"
    assert host.cpu.target == "power9le"


# util-linux captures, expected values from shared/data/README.md
UTIL_LINUX = [
    ("arm-A510-A710-A715-X3.cpuinfo", "arm64", "neoverse_n1", "armv8.2a", None),
    ("x86_64-epyc_7451.cpuinfo", "amd64", "zen", "x86_64_v3", 3),
    ("x86_64-64cpu-linux6.2.cpuinfo", "amd64", "icelake", "x86_64_v4", 4),
    ("x86_64-64cpu.cpuinfo", "amd64", "nehalem", "x86_64_v2", 2),
    ("ppc64-POWER7-64cpu.cpuinfo", "ppc64", "power7", "ppc64", None),
    ("vmware_fpe.cpuinfo", "amd64", "piledriver", "x86_64_v2", 2),
    ("vbox-win.cpuinfo", "amd64", "core2", "x86_64", 1),
]


@pytest.mark.parametrize("fname,arch,target,generic,level", UTIL_LINUX)
def test_util_linux_edge_cases(tmp_path, fname, arch, target, generic, level):
    root = sysroot_with(tmp_path, shared_data("util-linux-lscpu", fname))
    host = compat.detect(sysroot=root, assume={"os.arch": arch})
    assert (host.cpu.target, host.cpu.generic, host.cpu.x86_64_level) == (target, generic, level)


def test_vm_hiding_sse4_is_v1_so_os_variant_is_v1(tmp_path):
    root = sysroot_with(tmp_path, shared_data("util-linux-lscpu", "vbox-win.cpuinfo"))
    host = compat.detect(sysroot=root)
    assert host.os.variant == "v1"


def test_unknown_arm_implementer_falls_back_to_hwcap_level(tmp_path):
    """archspec gives bare aarch64 for an unknown implementer; the HWCAPs still tell a level."""
    text = open(os.path.join(CORPUS, "linux-unknown-neoverse_v2")).read()
    # make the part unknown as well, so that nothing but features remains
    text = text.replace("CPU implementer\t: 0x99", "CPU implementer\t: 0x77")
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc" / "cpuinfo").write_text(text.replace("0x41", "0x77"))
    host = compat.detect(sysroot=str(tmp_path))
    assert host.cpu.target == "aarch64"
    assert host.cpu.generic is not None and host.cpu.generic.startswith("armv")
    assert host.cpu.generic != "aarch64"
    assert "HWCAP" in host.sources["cpu.generic"]


def test_hwcap_table_is_cumulative():
    assert arm_level_from_hwcaps(["fp", "asimd"]) == "armv8.0a"
    assert arm_level_from_hwcaps(["fp", "asimd", "atomics", "asimdrdm", "crc32", "dcpop"]) == "armv8.2a"
    # a v8.4 marker without the v8.1 ones does not count
    assert arm_level_from_hwcaps(["fp", "asimd", "dit", "uscat", "ilrcpc", "flagm"]) == "armv8.0a"
    assert arm_level_from_hwcaps([]) is None


def test_unreadable_cpuinfo_under_sysroot_is_unknown_not_a_crash(tmp_path):
    (tmp_path / "proc").mkdir()
    host = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert host.cpu.target is None
    assert host.sources["cpu"].startswith("unknown:")


def test_live_host_has_a_target_and_level():
    host = compat.detect()
    assert host.cpu.target in archspec.cpu.TARGETS
    if host.cpu.family == "x86_64":
        assert 1 <= host.cpu.x86_64_level <= 4
        # glibc's own verdict is recorded where ld.so can be asked
        if os.path.exists("/lib64/ld-linux-x86-64.so.2"):
            assert host.cpu.glibc_level in (1, 2, 3, 4)


def test_py_cpuinfo_is_not_imported_on_the_default_path():
    proc = run_compat("detect", "--json", env={"PYTHONVERBOSE": ""})
    assert proc.returncode == 0
    import subprocess
    import sys
    out = subprocess.run([sys.executable, "-c", "import sys, compat; compat.detect(); "
                          "print('cpuinfo' in sys.modules)"], capture_output=True, text=True,
                         cwd=os.path.dirname(os.path.dirname(__file__)))
    assert out.stdout.strip() == "False", out.stderr
