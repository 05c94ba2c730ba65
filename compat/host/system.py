"""Operating system facts: kernel, distribution, glibc, container (runtimes: compat.host.runtime)."""
from __future__ import annotations

import os
import re

from compat.host.root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional

_CONFSTR_GLIBC = re.compile(r"glibc (\d+\.\d+)")

_GLIBC_BANNER = re.compile(rb"GNU C Library [^\n]{0,200}?version (\d+\.\d+)")

def kernel(root: Root, sources: Dict[str, str]) -> Optional[str]:
    text = root.read("/proc/sys/kernel/osrelease")
    if text:
        sources["os.kernel"] = root.path("/proc/sys/kernel/osrelease")
        return text.strip()
    if root.live:
        sources["os.kernel"] = "uname"
        return os.uname().release
    sources["os.kernel"] = "unknown: no /proc/sys/kernel/osrelease in the sysroot"
    return None


def os_release(root: Root, sources: Dict[str, str]) -> Dict[str, str]:
    for path in ("/etc/os-release", "/usr/lib/os-release"):
        text = root.read(path)
        if text:
            out = {}
            for line in text.splitlines():
                k, sep, v = line.partition("=")
                if sep:
                    out[k.strip()] = v.strip().strip('"').strip("'")
            sources["os.distro"] = root.path(path)
            return out
    sources["os.distro"] = "unknown: no os-release"
    return {}


def glibc(root: Root, sources: Dict[str, str]) -> Optional[str]:
    if root.live:
        try:
            value = os.confstr("CS_GNU_LIBC_VERSION") or ""
        except (ValueError, OSError):
            value = ""
        m = _CONFSTR_GLIBC.match(value)
        if m:
            sources["os.glibc"] = "confstr(CS_GNU_LIBC_VERSION)"
            return m.group(1)
    for d in ("/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/lib/powerpc64le-linux-gnu",
              "/lib64", "/usr/lib64", "/lib", "/usr/lib"):
        p = root.path(f"{d}/libc.so.6")
        blob = root.read_bytes(f"{d}/libc.so.6")
        if blob is None:
            continue
        m = _GLIBC_BANNER.search(blob)
        if m:
            sources["os.glibc"] = f"version string in {p}"
            return m.group(1).decode()
    sources["os.glibc"] = "unknown: no glibc found (musl or static?)"
    return None


def container(root: Root) -> Optional[str]:
    if root.exists("/.dockerenv"):
        return "docker"
    if root.exists("/run/.containerenv"):
        return "podman"
    if root.env.get("APPTAINER_CONTAINER") or root.env.get("SINGULARITY_CONTAINER"):
        return "apptainer"
    if root.env.get("container"):
        return root.env["container"]
    cg = root.read("/proc/1/cgroup") or ""
    for hint in ("docker", "kubepods", "containerd", "libpod"):
        if hint in cg:
            return hint
    return None
