"""Host probes: what machine are we on (or what machine do these files describe)?

``detect()`` runs every probe below one :class:`~compat.host.root.Root`, records where
each fact came from, then applies ``--assume`` overrides.  No probe may crash detection:
a probe that fails leaves its fact unknown and says why in ``sources``.
"""
from __future__ import annotations

import os
import zlib
from typing import Callable, Dict, Iterable, Mapping, Optional, Union

from compat import io, limits
from compat.errors import BadInput, printable
from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host, Libfabric, Runtime, Ucx, printable_host
from compat.vocab.values import oci_arch

__all__ = ["detect", "Host", "OS", "CPU", "GPU", "MPI", "Fabric", "Libfabric", "Ucx", "Runtime", "load",
           "load_host", "from_data"]


def _guard(name: str, sources: Dict[str, str], fn: Callable, default=None):
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - the contract: a failing probe never crashes
        sources[name] = f"unknown: probe failed ({type(exc).__name__}: {exc})"
        return default


def detect(sysroot: Optional[str] = None,
           assume: Union[None, Mapping[str, str], Iterable[str]] = None,
           probe_tools: bool = False, env: Optional[Mapping[str, str]] = None) -> Host:
    """Detect the host (or the machine whose files lie below ``sysroot``).

    ``assume`` overrides facts (``{"gpu.cc": "9.0"}`` or ``["gpu.cc=9.0"]``);
    ``probe_tools`` also asks ``fi_info`` for libfabric providers (adds 100-300 ms).
    """
    # start-up: a profile file, or compat.rank with a Host, loads no probe, cache or sysroot reader
    from compat.host import cpu as cpu_probe, fabric, gpu, mpi, system
    from compat.host.cache import ProbeCache, is_level
    from compat.host.root import Root

    _assume = None
    assumptions = {}
    if assume:
        from compat.host import assume as _assume  # start-up: only when there is something to assume
        assumptions = _assume.parse(assume)
    sysroot = sysroot or (env if env is not None else os.environ).get("COMPAT_SYSROOT") or None
    if sysroot and not os.path.isdir(sysroot):
        raise BadInput(f"--sysroot {sysroot}: not a directory")
    root = Root(sysroot, env=env)
    cache = ProbeCache()
    sources: Dict[str, str] = {}

    # architecture: --assume, else the capture's cpuinfo (sysroot), else this machine
    if "os.arch" in assumptions:
        arch = oci_arch(assumptions["os.arch"])
    else:
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

    release = _guard("os.distro", sources, lambda: system.os_release(root, sources), {})
    os_ = OS(name="linux", arch=arch,
             kernel=_guard("os.kernel", sources, lambda: system.kernel(root, sources)),
             distro=release.get("ID"), distro_version=release.get("VERSION_ID"),
             distro_name=release.get("PRETTY_NAME"),
             glibc=_guard("os.glibc", sources, lambda: system.glibc(root, sources)),
             container=_guard("os.container", sources, lambda: system.container(root)))
    os_ = os_._replace(variant=cpu_probe.oci_variant(arch, cpu))

    host = Host(
        os=os_, cpu=cpu,
        gpus=_guard("gpus", sources, lambda: gpu.probe_gpus(root, sources)),
        fabrics=_guard("fabrics", sources, lambda: fabric.probe_fabrics(root, sources)),
        libfabric=_guard("libfabric", sources, lambda: fabric.probe_libfabric(root, sources))
        if probe_tools else None,
        ucx=_guard("ucx", sources, lambda: fabric.probe_ucx(root, sources)) if probe_tools else None,
        mpi=_guard("mpi", sources, lambda: mpi.probe_mpi(root, sources, cache)),
        pmi=_guard("pmi", sources, lambda: mpi.probe_pmi(root, sources, cache)),
        runtimes=_guard("runtimes", sources, lambda: system.runtimes(root, sources, cache)),
        sources=sources,
    )
    if not probe_tools:             # a new dict: a Host's sources are never mutated in place
        unprobed = {"libfabric": "not probed (use --probe-tools, or --assume fabric.providers=...)",
                    "ucx": "not probed (use --probe-tools)"}
        host = host._replace(sources={**sources, **{k: v for k, v in unprobed.items() if k not in sources}})
    cache.save()
    host = printable_host(host)
    if not assumptions:
        return host
    return _assume.apply_checked(host, assumptions)


def load(path, assume: Union[None, Mapping[str, str], Iterable[str]] = None,
         what: Optional[str] = None) -> Host:
    """``--host FILE``: load a saved profile (``compat detect --json > node.json``), then
    apply ``assume``. Errors name the file as ``what`` (default ``--host PATH``)."""
    path = _path_argument(path, "load")
    what = what or f"--host {path}"
    data = io.load_json(io.read_file(path, limits.HOST_FILE_BYTES, what), what)
    return from_data(data, what, assume)


def load_host(path, assume: Union[None, Mapping[str, str], Iterable[str]] = None) -> Host:
    """The Python API's ``compat.load_host(path)``: as :func:`load`, errors naming the file
    as ``host profile PATH``."""
    path = _path_argument(path, "load_host")
    return load(path, assume, what=f"host profile {path}")


def from_data(data, what: str, assume: Union[None, Mapping[str, str], Iterable[str]] = None) -> Host:
    """A parsed profile -> Host: checked against ``schemas/host.schema.json`` (bounds
    included) first, so nothing downstream sees a wrong type; then ``assume`` applied."""
    # start-up: the schema interpreter loads only for a profile file
    from compat.schema import validate_host

    problem = validate_host(data)
    if problem:
        raise BadInput(printable(f"{what}: {problem}", 400))
    host = Host.from_dict(data)
    if not assume:
        return host
    # start-up: the --assume grammar loads only with --assume
    from compat.host import assume as _assume
    return _assume.apply_checked(host, _assume.parse(assume))


def _path_argument(path, who: str) -> str:
    """A profile path: ``str`` or ``os.PathLike`` (bytes paths too), else TypeError."""
    if isinstance(path, (str, bytes, os.PathLike)):
        value = os.fspath(path)
        return os.fsdecode(value) if isinstance(value, bytes) else value
    raise TypeError(f"{who}: expected a path (str or os.PathLike) to a host profile, "
                    f"got {type(path).__name__}")
