"""``compat detect`` when the whole-profile cache cannot answer (``profile_cache.py``): every
probe below one :class:`~compat.host.root.Root`, and where each fact came from. No probe may
crash detection: a probe that fails leaves its fact unknown and says why in ``sources``."""
from __future__ import annotations

import zlib

from compat.host import cpu as cpu_probe, fabric, gpu, mpi, rootless, runtime, system
from compat.host.cache import ProbeCache, is_level
from compat.host.profile import CPU, OS, Host, printable_host
from compat.host.root import Root
from compat.vocab.values import oci_arch

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Mapping, Optional


def _guard(name: str, sources: Dict[str, str], fn: Callable, default=None):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the contract: a failing probe never crashes
        sources[name] = f"unknown: probe failed ({type(exc).__name__}: {exc})"
        return default


def probe(root: Root, probe_tools: bool = False, assumptions: Optional[Mapping[str, str]] = None) -> Host:
    """Every probe below ``root``: the profile before ``--assume`` (only ``os.arch`` steers
    probing). ``compat.host.detect`` calls it when the whole-profile cache cannot answer."""
    assumptions = assumptions or {}
    cache = ProbeCache(root=root)
    sources: Dict[str, str] = {}
    arch = _arch(root, assumptions, sources)
    cpu = _cpu(root, arch, cache, sources)
    os_ = _os(root, arch, cpu, sources)
    host = Host(
        os=os_, cpu=cpu,
        gpus=_guard("gpus", sources, lambda: gpu.probe_gpus(root, sources)),
        fabrics=_guard("fabrics", sources, lambda: fabric.probe_fabrics(root, sources)),
        libfabric=_guard("libfabric", sources, lambda: fabric.probe_libfabric(root, sources))
        if probe_tools else None,
        ucx=_guard("ucx", sources, lambda: fabric.probe_ucx(root, sources)) if probe_tools else None,
        mpi=_guard("mpi", sources, lambda: mpi.probe_mpi(root, sources, cache)),
        pmi=_guard("pmi", sources, lambda: mpi.probe_pmi(root, sources, cache)),
        runtimes=_guard("runtimes", sources, lambda: runtime.probe_runtimes(root, sources, cache)),
        rootless=_guard("rootless", sources, lambda: rootless.probe_rootless(root, os_.kernel, sources)),
        sources=sources,
    )
    if not probe_tools:             # a new dict: a Host's sources are never mutated in place
        unprobed = {"libfabric": "not probed (use --probe-tools, or --assume fabric.providers=...)",
                    "ucx": "not probed (use --probe-tools)"}
        host = host._replace(sources={**sources, **{k: v for k, v in unprobed.items() if k not in sources}})
    cache.save()
    return printable_host(host)


def _arch(root: Root, assumptions: Mapping[str, str], sources: Dict[str, str]) -> Optional[str]:
    """The OCI architecture: --assume, else the capture's cpuinfo (sysroot), else this machine."""
    if "os.arch" in assumptions:
        return oci_arch(assumptions["os.arch"])
    arch = None
    if not root.live:
        info = cpu_probe.read_cpuinfo(root)
        arch = info and cpu_probe.arch_from_cpuinfo(info)
        if arch:
            sources["os.arch"] = f"shape of {root.path('/proc/cpuinfo')}"
    if arch is None:
        arch = cpu_probe.running_arch()
        sources["os.arch"] = "platform.machine() of the running machine" + \
            (" (the sysroot did not say)" if not root.live else "")
    return arch


def _cpu(root: Root, arch: Optional[str], cache: ProbeCache, sources: Dict[str, str]) -> CPU:
    """The CPU (archspec), and on a live x86-64 host the level glibc's loader supports."""
    cpu = _guard("cpu", sources, lambda: cpu_probe.probe_cpu(root, arch, sources), CPU())
    if root.live and cpu.family == "x86_64":
        flags = zlib.crc32(",".join(cpu.features or ()).encode())   # the answer depends on the CPU too
        level = _guard("cpu.glibc_level", sources, lambda: cache.get(
            f"ldso-level|{flags:08x}", ["/lib64/ld-linux-x86-64.so.2"],
            lambda: cpu_probe.glibc_level(root), is_level))
        if level:
            cpu = cpu._replace(glibc_level=level)
            sources["cpu.glibc_level"] = "ld.so --help (glibc-hwcaps supported)"
            if cpu.x86_64_level and level != cpu.x86_64_level:
                sources["cpu.level_disagreement"] = (
                    f"archspec says x86-64-v{cpu.x86_64_level}, glibc says x86-64-v{level}; "
                    f"compat uses v{min(level, cpu.x86_64_level)}")
    return cpu


def _os(root: Root, arch: Optional[str], cpu: CPU, sources: Dict[str, str]) -> OS:
    """Kernel, distribution, glibc, container, and the OCI variant the CPU runs."""
    release = _guard("os.distro", sources, lambda: system.os_release(root, sources), {})
    os_ = OS(name="linux", arch=arch,
             kernel=_guard("os.kernel", sources, lambda: system.kernel(root, sources)),
             distro=release.get("ID"), distro_version=release.get("VERSION_ID"),
             distro_name=release.get("PRETTY_NAME"),
             glibc=_guard("os.glibc", sources, lambda: system.glibc(root, sources)),
             container=_guard("os.container", sources, lambda: system.container(root)))
    return os_._replace(variant=cpu_probe.oci_variant(arch, cpu))
