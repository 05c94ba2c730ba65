"""GPU and fabric detection from sysfs/procfs captures (fixtures/hosts, shared/data)."""
import os
import shutil

import pytest

import compat
from compat.host.gpu import gfx_name, pci_devices, pci_gpus
from compat.host.root import Root
from conftest import HOSTS, shared_data


def host(name, **kw):
    return compat.detect(sysroot=os.path.join(HOSTS, name), **kw)


def test_nfd_pci_capture_has_no_gpu_despite_bmc_vga():
    root = Root(shared_data("nfd-pci-sysfs", "rootfs-1"))
    devices = pci_devices(root)
    assert len(devices) == 11
    bmc = [d for d in devices if d.bdf == "0000:02:00.0"][0]
    assert (bmc.vendor, bmc.cls) == ("0x1a03", "0x030000")
    empty = [d for d in devices if d.bdf == "0000:00:1f.2"][0]
    assert empty.vendor is None and empty.device is None   # tolerated, not a crash
    assert pci_gpus(devices) == []


def test_nfd_pci_capture_through_detect(tmp_path):
    sysroot = tmp_path / "root"
    shutil.copytree(shared_data("nfd-pci-sysfs", "rootfs-1"), sysroot, symlinks=True)
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    assert h.gpus == ()
    assert h.fabrics == ()    # the X722 Ethernet NIC is no RDMA fabric


def test_nvidia_without_nvml_from_procfs_and_pci():
    h = host("nvidia-4xh100-nonvml")
    assert [g.vendor for g in h.gpus] == ["nvidia"] * 4      # the ASPEED VGA is not counted
    g = h.gpus[0]
    assert (g.model, g.cc, g.driver, g.cuda) == ("NVIDIA H100 80GB HBM3", "9.0", "550.54.14", "12.4")
    assert "/proc/driver/nvidia/version" in h.sources["gpus.nvidia"]


def test_nvidia_open_kernel_module_version_line(tmp_path):
    (tmp_path / "proc/driver/nvidia").mkdir(parents=True)
    (tmp_path / "proc/driver/nvidia/version").write_text(
        "NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  570.195.03  Release Build  "
        "(dvs-builder@U16-I3-B03-4-3)  Thu Sep 18 20:49:39 UTC 2025\n")
    d = tmp_path / "sys/bus/pci/devices/0000:01:00.0"
    d.mkdir(parents=True)
    for k, v in (("vendor", "0x10de"), ("device", "0x20b2"), ("class", "0x030200")):
        (d / k).write_text(v + "\n")
    h = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert (h.gpus[0].driver, h.gpus[0].cuda, h.gpus[0].cc) == ("570.195.03", "12.8", "8.0")


def test_amd_mi250x_from_kfd_topology():
    h = host("amd-mi250x")
    assert len(h.gpus) == 8 and {g.gfx for g in h.gpus} == {"gfx90a"}
    assert h.gpus[0].rocm == "5.7.1"


@pytest.mark.parametrize("value,name", [(90010, "gfx90a"), (90402, "gfx942"), (110000, "gfx1100"),
                                        (90008, "gfx908")])
def test_gfx_decoding(value, name):
    assert gfx_name(value) == name


def test_laptop_intel_igpu_from_drm():
    h = host("laptop-tigerlake")
    assert [(g.vendor, g.driver) for g in h.gpus] == [("intel", "i915")]
    assert h.fabrics == ()


@pytest.mark.parametrize("name,kind,extra", [
    ("ib-hdr-zen4", "infiniband", {"driver": "mlx5_core", "state": "ACTIVE", "rate": "200 Gb/sec (4X HDR)"}),
    ("roce-cascadelake", "roce", {"link_layer": "Ethernet"}),
    ("efa-graviton3", "efa", {"driver": "efa", "link_layer": "Unknown"}),
    ("slingshot-zen3", "slingshot", {"device": "cxi0"}),
    ("nvidia-4xh100-nonvml", "infiniband", {"rate": "400 Gb/sec (4X NDR)"}),
])
def test_fabric_kinds(name, kind, extra):
    h = host(name)
    assert [f.type for f in h.fabrics] == [kind]
    for k, v in extra.items():
        assert getattr(h.fabrics[0], k) == v


def test_missing_sys_is_unknown_gpus(tmp_path):
    (tmp_path / "proc").mkdir()
    h = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert h.gpus is None
    assert h.sources["gpus"].startswith("unknown:")


def test_unreadable_attribute_is_tolerated(tmp_path):
    d = tmp_path / "sys/bus/pci/devices/0000:01:00.0"
    d.mkdir(parents=True)
    (d / "vendor").write_text("0x10de\n")
    (d / "class").mkdir()             # a directory where a file should be: unreadable
    h = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert h.gpus == ()


def test_pmi_from_slurm_plugin_files():
    assert host("ib-hdr-zen4").pmi == ("pmi2", "pmix")
    assert host("slingshot-zen3").pmi == ("pmi2",)


def test_mpi_from_files_under_sysroot():
    h = host("efa-graviton3")
    assert [(m.implementation, m.version, m.abi) for m in h.mpi] == [("openmpi", "4.1.6", "openmpi")]
    h = host("slingshot-zen3")
    assert [(m.implementation, m.abi) for m in h.mpi] == [("cray-mpich", "mpich")]


def test_gpus_from_pci_alone_when_kfd_and_drm_say_nothing(tmp_path):
    """An AMD GPU without KFD topology is still a GPU (vendor and class from pci.json), an Intel
    one too when there is no DRM; where DRM lists cards, DRM decides (another vendor's card is
    no Intel GPU)."""
    import shutil
    for bdf, vendor, cls in (("0000:03:00.0", "0x1002", "0x038000"), ("0000:00:02.0", "0x8086", "0x030000"),
                             ("0000:05:00.0", "0x15b3", "0x020700")):
        d = tmp_path / "sys/bus/pci/devices" / bdf
        d.mkdir(parents=True)
        for k, v in (("vendor", vendor), ("device", "0x0001"), ("class", cls)):
            (d / k).write_text(v + "\n")
    card = tmp_path / "sys/class/drm/card0/device"
    card.mkdir(parents=True)
    (card / "vendor").write_text("0x10de\n")
    h = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert [(g.vendor, g.pci) for g in h.gpus] == [("amd", "0000:03:00.0")]
    assert h.sources["gpus.amd"].startswith("sysfs PCI")
    shutil.rmtree(tmp_path / "sys/class/drm")
    h = compat.detect(sysroot=str(tmp_path), assume={"os.arch": "amd64"})
    assert sorted((g.vendor, g.pci) for g in h.gpus) == [("amd", "0000:03:00.0"), ("intel", "0000:00:02.0")]
    assert h.sources["gpus.intel"] == "sysfs PCI"


@pytest.mark.parametrize("driver, cuda", [(None, None), ("", None), ("550.54.14", "12.4"), ("999.1", None)])
def test_cuda_for_driver_reads_the_branch_table(driver, cuda):
    from compat.host.gpu import cuda_for_driver
    assert cuda_for_driver(driver) == cuda
