"""High-speed fabric: RDMA devices in sysfs, Slingshot's CXI class, and (on request) the
libfabric providers ``fi_info`` can load.

Kernel ABI: ``Documentation/ABI/stable/sysfs-class-infiniband`` (``ports/<n>/link_layer``,
``state``, ``rate``; the driver is the ``device/driver`` link).  AWS EFA reports link layer
``Unknown`` and driver ``efa``; Omni-Path is driver ``hfi1``; HPE Slingshot's Cassini NICs
appear as ``/sys/class/cxi/cxi<N>``.
"""
from __future__ import annotations

import re

from compat.host.profile import Fabric, Libfabric, Ucx
from compat.host.root import Root
from compat.vocab.data import fabric_drivers

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Pattern, Tuple


_STATE_NUMBER = re.compile(r"^\d+:\s*")      # "4: ACTIVE" -> "ACTIVE"
_FI_VERSION = re.compile(r"libfabric:\s*(\S+)")
_FI_PROVIDER = re.compile(r"^([\w;-]+):\s*$", re.M)
_UCX_VERSION = re.compile(r"Version\s+(\S+)")
_UCX_TRANSPORT = re.compile(r"Transport:\s*(\S+)")


def _fabric_type(driver: Optional[str], link_layer: Optional[str], dev: str) -> Optional[str]:
    for kind in ("efa", "omnipath"):        # told by the NIC's driver (fabrics.json), not the link layer
        drivers = fabric_drivers(kind)
        if driver in drivers or dev.startswith(drivers):
            return kind
    if link_layer == "Unknown" and dev.startswith("rdmap"):
        return "efa"
    if link_layer == "InfiniBand":
        return "infiniband"
    if link_layer == "Ethernet":
        return "roce"
    return None


def probe_fabrics(root: Root, sources: Dict[str, str]) -> Optional[Tuple[Fabric, ...]]:
    """RDMA devices and CXI NICs; None (unknown) when sysfs cannot be listed: a directory
    that exists but cannot be read is no evidence of "tcp only"."""
    found: List[Fabric] = []
    ib, cxi = "/sys/class/infiniband", "/sys/class/cxi"
    devices, nics = root.scan(ib), root.scan(cxi)
    unreadable = [root.path(p) for p, got in (("/sys", root.scan("/sys") or None),
                                              (ib, devices), (cxi, nics)) if got is None]
    if unreadable:
        sources["fabrics"] = f"unknown: cannot list {', '.join(unreadable)}"
        return None
    for dev in devices:
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
                                state=state and _STATE_NUMBER.sub("", state.strip()),
                                rate=rate and rate.strip()))
    for dev in nics:
        found.append(Fabric(type="slingshot", device=dev,
                            driver=root.link_name(f"/sys/class/cxi/{dev}/device/driver") or "cxi_ss1"))
    sources["fabrics"] = f"sysfs ({root.path(ib)}, {root.path(cxi)})"
    return tuple(found)


def _ask_tool(root: Root, sources: Dict[str, str], fact: str, tool: str, version_arg: str,
              version_re: Pattern, list_arg: str,
              item_re: Pattern) -> Optional[Tuple[Optional[str], Tuple[str, ...]]]:
    """(version, listed names) from two calls of ``tool``, or None with the reason recorded
    (not on PATH; under a sysroot nothing runs)."""
    path = root.which(tool)
    if not path:
        sources[fact] = f"unknown: {tool} not on PATH" if root.live else "unknown: not probed under a sysroot"
        return None
    m = version_re.search(root.run([path, version_arg]) or "")
    items = tuple(dict.fromkeys(item_re.findall(root.run([path, list_arg], timeout=5.0) or "")))
    sources[fact] = f"{path} {version_arg}, {list_arg}"
    return (m.group(1) if m else None), items


def probe_libfabric(root: Root, sources: Dict[str, str]) -> Optional[Libfabric]:
    """``fi_info --version`` and ``fi_info -l``: 100-300 ms, so only on request."""
    got = _ask_tool(root, sources, "libfabric", "fi_info", "--version", _FI_VERSION, "-l", _FI_PROVIDER)
    if got is None:
        return None
    return Libfabric(version=got[0], providers=tuple(p for p in got[1] if not p.startswith("ofi_hook")))


def probe_ucx(root: Root, sources: Dict[str, str]) -> Optional[Ucx]:
    """``ucx_info -v`` and ``-d`` (about 15 ms): UCX's version and the transports it can use."""
    got = _ask_tool(root, sources, "ucx", "ucx_info", "-v", _UCX_VERSION, "-d", _UCX_TRANSPORT)
    return None if got is None else Ucx(version=got[0], transports=got[1])
