"""High-speed fabric: RDMA devices in sysfs, Slingshot's CXI class, and (on request) the
libfabric providers ``fi_info`` can load.

Kernel ABI: ``Documentation/ABI/stable/sysfs-class-infiniband`` (``ports/<n>/link_layer``,
``state``, ``rate``; the driver is the ``device/driver`` link).  AWS EFA reports link layer
``Unknown`` and driver ``efa``; Omni-Path is driver ``hfi1``; HPE Slingshot's Cassini NICs
appear as ``/sys/class/cxi/cxi<N>``.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Tuple

from compat.host.profile import Fabric, Libfabric, Ucx
from compat.host.root import Root


def _fabric_type(driver: Optional[str], link_layer: Optional[str], dev: str) -> Optional[str]:
    if driver == "efa" or dev.startswith("efa") or (link_layer == "Unknown" and dev.startswith("rdmap")):
        return "efa"
    if driver == "hfi1" or dev.startswith("hfi1"):
        return "omnipath"
    if link_layer == "InfiniBand":
        return "infiniband"
    if link_layer == "Ethernet":
        return "roce"
    return None


def probe_fabrics(root: Root, sources: Dict[str, str]) -> Tuple[Fabric, ...]:
    found: List[Fabric] = []
    ib = "/sys/class/infiniband"
    for dev in root.listdir(ib):
        driver = root.link_name(f"{ib}/{dev}/device/driver")
        ports = root.listdir(f"{ib}/{dev}/ports") or [""]
        for port in ports:
            p = f"{ib}/{dev}/ports/{port}"
            link = root.read(f"{p}/link_layer") if port else None
            kind = _fabric_type(driver, link and link.strip(), dev)
            if kind is None:
                continue
            state = root.read(f"{p}/state") if port else None
            rate = root.read(f"{p}/rate") if port else None
            found.append(Fabric(type=kind, device=f"{dev}/{port}" if port else dev, driver=driver,
                                link_layer=link and link.strip(),
                                state=state and re.sub(r"^\d+:\s*", "", state.strip()),
                                rate=rate and rate.strip()))
    for dev in root.listdir("/sys/class/cxi"):
        found.append(Fabric(type="slingshot", device=dev,
                            driver=root.link_name(f"/sys/class/cxi/{dev}/device/driver") or "cxi_ss1"))
    sources["fabrics"] = f"sysfs ({root.path(ib)}, {root.path('/sys/class/cxi')})"
    return tuple(found)


def _tool(root: Root, name: str, fact: str, sources: Dict[str, str]) -> Optional[str]:
    """The tool's path, or None with the reason recorded (a sysroot runs nothing)."""
    path = root.which(name)
    if not path:
        sources[fact] = f"unknown: {name} not on PATH" if root.live else "unknown: not probed under a sysroot"
    return path


def probe_libfabric(root: Root, sources: Dict[str, str]) -> Optional[Libfabric]:
    """``fi_info --version`` and ``fi_info -l``: 100-300 ms, so only on request."""
    fi = _tool(root, "fi_info", "libfabric", sources)
    if not fi:
        return None
    ver = root.run([fi, "--version"]) or ""
    m = re.search(r"libfabric:\s*(\S+)", ver)
    listing = root.run([fi, "-l"], timeout=5.0) or ""
    providers = tuple(dict.fromkeys(
        name for name in re.findall(r"^([\w;-]+):\s*$", listing, re.M)
        if not name.startswith("ofi_hook")))
    sources["libfabric"] = f"{fi} --version, -l"
    return Libfabric(version=m.group(1) if m else None, providers=providers)


def probe_ucx(root: Root, sources: Dict[str, str]) -> Optional[Ucx]:
    """``ucx_info -v`` and ``-d`` (about 15 ms): UCX's version and the transports it can use."""
    tool = _tool(root, "ucx_info", "ucx", sources)
    if not tool:
        return None
    ver = root.run([tool, "-v"]) or ""
    m = re.search(r"Version\s+(\S+)", ver)
    devices = root.run([tool, "-d"], timeout=5.0) or ""
    transports = tuple(dict.fromkeys(re.findall(r"Transport:\s*(\S+)", devices)))
    sources["ucx"] = f"{tool} -v, -d"
    return Ucx(version=m.group(1) if m else None, transports=transports)
