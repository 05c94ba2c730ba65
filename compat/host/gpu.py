"""GPUs: NVIDIA through NVML, else /proc/driver/nvidia and sysfs; AMD through the KFD
topology; Intel through sysfs DRM.  Every path ends in an answer, "none" or "unknown".

Order of preference per vendor (the first source that answers wins, and says so in
``sources``):

* NVIDIA: NVML (``pynvml``, live machine only) -> ``/proc/driver/nvidia`` (driver version,
  per-GPU model) + sysfs PCI IDs (compute capability from ``nvidia_pci.json``) -> sysfs PCI.
* AMD: ``/sys/class/kfd/kfd/topology/nodes/*/properties`` (``gfx_target_version``) ->
  sysfs PCI.
* Intel: ``/sys/class/drm/card*/device`` with driver ``i915``/``xe`` -> sysfs PCI.

A device is a GPU only if its PCI vendor is one of the three and its class is display (0x03)
or processing accelerator (0x12): the ASPEED BMC VGA chip of many servers is not a GPU.
"""
from __future__ import annotations

import re

from compat.host.profile import GPU
from compat.host.root import Root
from compat.vocab.data import gpu_pci, gpu_pci_classes, load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

_NVIDIA_MODULE = re.compile(r"Module\b[^\n]{0,200}?\s(\d{1,4}\.\d{1,6}(?:\.\d{1,6})?)\s")
_BARE_VERSION = re.compile(r"\s*(\d+\.\d+(?:\.\d+)?)\s*$")
_MODEL_LINE = re.compile(r"^Model:\s*(.+)$", re.M)
_ROCM_VERSION = re.compile(r"\d+\.\d+(?:\.\d+)?")
_GFX_TARGET_VERSION = re.compile(r"^gfx_target_version\s+(\d+)", re.M)
_DRM_CARD = re.compile(r"card\d+")



class PciDevice:
    __slots__ = ("bdf", "vendor", "device", "cls", "driver")

    def __init__(self, bdf, vendor, device, cls, driver):
        self.bdf, self.vendor, self.device, self.cls, self.driver = bdf, vendor, device, cls, driver


def pci_devices(root: Root) -> List[PciDevice]:
    """Every device under /sys/bus/pci/devices; empty or unreadable attributes become None."""
    base = "/sys/bus/pci/devices"
    out = []
    for bdf in root.listdir(base):
        d = f"{base}/{bdf}"
        out.append(PciDevice(bdf, (root.read(f"{d}/vendor") or "").strip().lower() or None,
                             (root.read(f"{d}/device") or "").strip().lower() or None,
                             (root.read(f"{d}/class") or "").strip().lower() or None,
                             root.link_name(f"{d}/driver")))
    return out


def _sysfs_id(vendor: str) -> str:
    """A GPU vendor's PCI ID as sysfs spells it (``0x10de``)."""
    return "0x" + gpu_pci()[vendor]["vendor"]


def pci_gpus(devices: List[PciDevice]) -> List[PciDevice]:
    vendors = {_sysfs_id(v) for v in gpu_pci()}
    classes = tuple("0x" + c for c in gpu_pci_classes())
    return [d for d in devices if d.vendor in vendors and d.cls and d.cls.startswith(classes)]


# -- NVIDIA -----------------------------------------------------------------------------------

def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def nvidia_nvml(sources: Dict[str, str], root: Optional[Root] = None) -> Optional[Tuple[GPU, ...]]:
    """NVML's view, or None when NVML cannot answer (no library, no driver, no permission).
    What NVML says follows from files it reads around ``root``: the loaded driver's version,
    its GPU list, and this process's cgroup (a Slurm job's or a container's device cgroup
    limits the GPUs NVML can open). They are read through ``root`` so that a cached profile
    is keyed by them (spec/host.md, "What is cached")."""
    root = root or Root()
    # the library pynvml would load; absent on most hosts, and 0.2 ms to find out
    if root.load_library("libnvidia-ml.so.1") is None:
        sources["gpu.nvml"] = "unavailable: libnvidia-ml.so.1 not found"
        return None
    for path in ("/proc/driver/nvidia/version", "/proc/self/cgroup"):
        root.read(path)
    root.scan("/proc/driver/nvidia/gpus")
    try:
        # start-up: pynvml loads only after libnvidia-ml.so.1 did
        import pynvml
    except ImportError:
        sources["gpu.nvml"] = "unavailable: pynvml not installed"
        return None
    try:
        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - NVMLError_LibraryNotFound, DriverNotLoaded ...
        sources["gpu.nvml"] = f"unavailable: {type(exc).__name__}"
        return None
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            v = pynvml.nvmlSystemGetCudaDriverVersion_v2()
        except Exception:  # noqa: BLE001 - v2 needs libcuda; v1 answers from the driver
            v = pynvml.nvmlSystemGetCudaDriverVersion()
        cuda = f"{v // 1000}.{(v % 1000) // 10}" if v else None
        gpus = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(h)
                cc = f"{major}.{minor}"
            except Exception:  # noqa: BLE001 - a device that cannot say stays unknown
                cc = None
            try:
                mem = pynvml.nvmlDeviceGetMemoryInfo(h).total // (1 << 20)
            except Exception:  # noqa: BLE001
                mem = None
            try:
                mig = bool(pynvml.nvmlDeviceGetMigMode(h)[0])
            except Exception:  # noqa: BLE001 - NOT_SUPPORTED on GPUs without MIG
                mig = False
            gpus.append(GPU(vendor="nvidia", index=i, model=_text(pynvml.nvmlDeviceGetName(h)),
                            cc=cc, driver=driver, cuda=cuda, memory_mib=mem, mig=mig))
        sources["gpus.nvidia"] = "NVML (libnvidia-ml.so.1)"
        return tuple(gpus)
    except Exception as exc:  # noqa: BLE001
        sources["gpu.nvml"] = f"failed: {type(exc).__name__}: {exc}"
        return None
    finally:
        try:
            pynvml.nvmlShutdown()
        except Exception:  # noqa: BLE001
            pass


def nvidia_driver_version(root: Root) -> Tuple[Optional[str], Optional[str]]:
    for path in ("/proc/driver/nvidia/version", "/sys/module/nvidia/version"):
        text = root.read(path)
        if not text:
            continue
        line = text.splitlines()[0]
        m = _NVIDIA_MODULE.search(line + " ") \
            or _BARE_VERSION.match(line)
        if m:
            return m.group(1), path
    return None, None


def cuda_for_driver(driver: Optional[str]) -> Optional[str]:
    if not driver:
        return None
    return load_data("cuda")["driver_branch_cuda"].get(driver.split(".")[0])


def nvidia_files(root: Root, pci: List[PciDevice], sources: Dict[str, str]) -> Tuple[GPU, ...]:
    """NVIDIA GPUs from procfs and sysfs alone (no NVML): model, driver, CC from PCI IDs."""
    driver, driver_src = nvidia_driver_version(root)
    cc_table = load_data("nvidia_pci")["devices"]
    models: Dict[str, str] = {}
    for bdf in root.listdir("/proc/driver/nvidia/gpus"):
        info = root.read(f"/proc/driver/nvidia/gpus/{bdf}/information") or ""
        m = _MODEL_LINE.search(info)
        if m:
            models[bdf.lower()] = m.group(1).strip()
    gpus = []
    for i, dev in enumerate(d for d in pci if d.vendor == _sysfs_id("nvidia")):
        entry = cc_table.get(dev.device or "", {})
        gpus.append(GPU(vendor="nvidia", index=i, pci=dev.bdf,
                        model=models.get(dev.bdf.lower()) or entry.get("name"),
                        cc=entry.get("cc"), driver=driver, cuda=cuda_for_driver(driver)))
    if gpus:
        parts = ["sysfs PCI"]
        if models:
            parts.append("/proc/driver/nvidia/gpus")
        if driver_src:
            parts.append(driver_src)
        sources["gpus.nvidia"] = " + ".join(parts) + " (compute capability from PCI device ID)"
        if driver:
            sources["gpu.cuda"] = "driver branch table (compat/data/cuda.json)"
    return tuple(gpus)


# -- AMD --------------------------------------------------------------------------------------

def gfx_name(version: int) -> str:
    major, minor, step = version // 10000 % 100, version // 100 % 100, version % 100
    return f"gfx{major}{minor}{step:x}"


def amd_kfd(root: Root, sources: Dict[str, str]) -> Optional[Tuple[GPU, ...]]:
    base = "/sys/class/kfd/kfd/topology/nodes"
    nodes = root.listdir(base)
    if not nodes:
        return None
    rocm = (root.read("/opt/rocm/.info/version") or "").strip() or None
    m = _ROCM_VERSION.match(rocm or "")
    rocm = m.group(0) if m else None                 # "1x" or junk: unknown, not a crash
    driver = (root.read("/sys/module/amdgpu/version") or "").strip() or None
    gpus = []
    for node in sorted(nodes, key=lambda n: int(n) if n.isdigit() else 0):
        props = root.read(f"{base}/{node}/properties") or ""
        m = _GFX_TARGET_VERSION.search(props)
        if not m or int(m.group(1)) == 0:
            continue  # CPU node
        gpus.append(GPU(vendor="amd", index=len(gpus), gfx=gfx_name(int(m.group(1))),
                        driver=driver, rocm=rocm))
    sources["gpus.amd"] = "KFD topology (/sys/class/kfd)" + (" + /opt/rocm/.info/version" if rocm else "")
    return tuple(gpus)


# -- Intel ------------------------------------------------------------------------------------

def intel_drm(root: Root, sources: Dict[str, str]) -> Optional[Tuple[GPU, ...]]:
    cards = [c for c in root.listdir("/sys/class/drm") if _DRM_CARD.fullmatch(c)]
    gpus = []
    for card in cards:
        if (root.read(f"/sys/class/drm/{card}/device/vendor") or "").strip().lower() != _sysfs_id("intel"):
            continue
        driver = root.link_name(f"/sys/class/drm/{card}/device/driver")
        gpus.append(GPU(vendor="intel", index=len(gpus), driver=driver,
                        model=(root.read(f"/sys/class/drm/{card}/device/device") or "").strip() or None))
    if not cards:
        return None
    sources["gpus.intel"] = "sysfs DRM (/sys/class/drm)"
    return tuple(gpus)


# -- all vendors ------------------------------------------------------------------------------

def probe_gpus(root: Root, sources: Dict[str, str]) -> Optional[Tuple[GPU, ...]]:
    pci = pci_gpus(pci_devices(root))
    pci_seen = bool(root.listdir("/sys/bus/pci/devices"))
    gpus: List[GPU] = []

    nvidia = nvidia_nvml(sources, root) if root.live else None
    if nvidia is None:
        nvidia = nvidia_files(root, pci, sources)
    gpus += nvidia

    amd = amd_kfd(root, sources)
    if amd is None:
        amd = tuple(GPU(vendor="amd", index=i, pci=d.bdf)
                    for i, d in enumerate(d for d in pci if d.vendor == _sysfs_id("amd")))
        if amd:
            sources["gpus.amd"] = "sysfs PCI (no KFD topology: gfx target unknown)"
    gpus += amd

    intel = intel_drm(root, sources)
    if intel is None:
        intel = tuple(GPU(vendor="intel", index=i, pci=d.bdf, driver=d.driver)
                      for i, d in enumerate(d for d in pci if d.vendor == _sysfs_id("intel")))
        if intel:
            sources["gpus.intel"] = "sysfs PCI"
    gpus += intel

    if not gpus and not pci_seen and "gpus.nvidia" not in sources:
        sources["gpus"] = f"unknown: {root.path('/sys/bus/pci/devices')} unreadable"
        return None
    if not gpus:
        sources["gpus"] = "sysfs PCI: no display or accelerator device of NVIDIA, AMD or Intel"
    return tuple(gpus)
