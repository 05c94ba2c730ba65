"""The host in NFD's feature model, and back.

* :func:`from_host` — the features NFD rules read (``cpu.cpuid`` with ``X86_64_V1..V4``,
  ``cpu.model``, ``kernel.version``, ``kernel.loadedmodule``, ``kernel.config``,
  ``pci.device``, ``system.osrelease``, ``memory.numa``) from a compat profile plus, when a
  :class:`~compat.host.root.Root` is given, the files below it (live or ``--sysroot``); and
  ``local.feature`` with compat's own facts.
* :func:`from_export` — ``nfd export features`` JSON or a NodeFeature object (YAML/JSON).
* :func:`to_host` — a compat profile from NFD features, so ``--host`` takes a NodeFeature.
* :func:`local_feature_file` — ``compat detect --format nfd-features``: an NFD local feature
  file carrying what NFD cannot see (MPI, libfabric providers, CUDA driver, compute
  capability, glibc, archspec target).
"""
from __future__ import annotations

import re
from typing import Dict, List, Mapping, Optional, Set

import compat.host as host_mod
from compat import limits
from compat.errors import BadInput, ValueProblem
from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host, Libfabric
from compat.io import load_structured, read_file
from compat.nfd.cpuid import cpuid_name, linux_flag
from compat.nfd.rules import Features
from compat.vocab.data import arch_families, fabric_drivers, fabric_pci, gpu_pci, gpu_pci_classes, nfd_cpu_vendors
from compat.vocab.values import gpu_count

LOCAL = "hpc-compat.org/"


def cpuid_flags(cpu: CPU) -> Set[str]:
    flags = {cpuid_name(f) for f in (cpu.features or ())}
    if cpu.family == "x86_64" and cpu.x86_64_level:
        level = min(cpu.x86_64_level, cpu.glibc_level or cpu.x86_64_level)
        flags |= {f"X86_64_V{n}" for n in range(1, level + 1)}
    return flags


def kernel_version(release: str) -> Dict[str, str]:
    """NFD's kernel source (``source/kernel/version.go``): the label-safe release as ``full``,
    and its numbers when it has the form major[.minor[.revision]][-...] (missing parts are
    empty strings, as Go's FindStringSubmatch gives them)."""
    full = re.sub(r"[^-A-Za-z0-9_.]", "_", release).strip("-_.")
    out = {"full": full}
    m = re.fullmatch(r"(\d+)(?:\.(\d+))?(?:\.(\d+))?(-.*)?", full, re.ASCII | re.DOTALL)
    if m:
        out.update(major=m.group(1), minor=m.group(2) or "", revision=m.group(3) or "")
    return out


def local_facts(host: Host) -> Dict[str, str]:
    """compat's facts as NFD local feature names and label-safe values."""
    out: Dict[str, str] = {}

    def put(key, value):
        if value is None or value == "":
            return
        value = re.sub(r"[^A-Za-z0-9_.-]", "_", str(value))[:63].strip("_.-")
        if value:
            out[LOCAL + key] = value

    put("os.arch", host.os.arch)
    put("cpu.target", host.cpu.target)
    put("cpu.generic", host.cpu.generic)
    put("libc.glibc", host.os.glibc)
    if host.gpus is not None:
        vendors = sorted({g.vendor for g in host.gpus})
        put("gpu.vendor", vendors[0] if len(vendors) == 1 else ("none" if not vendors else "mixed"))
        for v in vendors:
            gs = [g for g in host.gpus if g.vendor == v]
            put(f"gpu.{v}.count", len(gs))
            g = gs[0]
            if v == "nvidia":
                put("gpu.cc", g.cc)
                put("gpu.driver", g.driver)
                put("gpu.cuda.version", g.cuda)
            if v == "amd":
                put("gpu.amd.arch", g.gfx)
                put("gpu.rocm.version", g.rocm)
    if host.mpi is not None:
        if host.mpi:
            m = host.mpi[0]
            put("mpi.implementation", m.implementation)
            put("mpi.version", m.version)
            put("mpi.abi", m.abi)
        else:
            put("mpi.implementation", "none")
    for p in host.pmi or ():
        put(f"mpi.pmi.{p}", "true")
    for f in host.fabric_types() or ():
        put(f"fabric.{f}", "true")
    if host.libfabric:
        for p in host.libfabric.providers:
            put(f"fabric.provider.{re.sub(r'[^A-Za-z0-9_.-]', '_', p)}", "true")
    return out


def local_feature_file(host: Host) -> str:
    lines = ["# Host facts Node Feature Discovery cannot see, written by `compat detect --format nfd-features`.",
             "# Install as /etc/kubernetes/node-feature-discovery/features.d/hpc-compat; NFD publishes each",
             "# line as the node label feature.node.kubernetes.io/<name> and the local.feature attribute <name>."]
    lines += [f"{k}={v}" for k, v in sorted(local_facts(host).items())]
    return "\n".join(lines) + "\n"


def _pci_instances(root) -> List[Dict[str, str]]:
    base = "/sys/bus/pci/devices"
    out = []
    for bdf in root.listdir(base):
        inst = {}
        for attr in ("vendor", "device", "class", "subsystem_vendor", "subsystem_device"):
            v = (root.read(f"{base}/{bdf}/{attr}") or "").strip().lower()
            if v:
                v = v[2:] if v.startswith("0x") else v
                inst[attr] = v[:4] if attr == "class" else v
        if inst:
            out.append(inst)
    return out


def _kernel_config(root, release: Optional[str]) -> Dict[str, str]:
    text = root.read_gzip("/proc/config.gz")     # regular file, bounded, corrupt = None
    if text is None and release:
        text = root.read(f"/boot/config-{release}", limit=limits.SYSROOT_FILE_BYTES)
    out = {}
    for line in (text or "").splitlines():
        m = re.match(r"CONFIG_(\w+)=(.*)$", line)
        if m:
            out[m.group(1)] = m.group(2).strip('"')
    return out


def from_host(host: Host, root=None) -> Features:
    flags: Dict[str, Set[str]] = {"cpu.cpuid": cpuid_flags(host.cpu)}
    attrs: Dict[str, Dict[str, str]] = {}
    inst: Dict[str, List[Dict[str, str]]] = {}
    model: Dict[str, str] = {}
    if host.cpu.vendor:
        model["vendor_id"] = nfd_cpu_vendors().get(host.cpu.vendor, host.cpu.vendor)
    if host.os.kernel:
        attrs["kernel.version"] = kernel_version(host.os.kernel)
    osr = {}
    if host.os.distro:
        osr["ID"] = host.os.distro
    if host.os.distro_version:
        osr["VERSION_ID"] = host.os.distro_version
    if host.os.distro_name:
        osr["PRETTY_NAME"] = host.os.distro_name
    if root is not None:
        # start-up: the probes load only when NFD artifacts are evaluated
        from compat.host.cpu import read_cpuinfo
        info = read_cpuinfo(root) or {}
        if "cpu family" in info:
            model["family"] = info["cpu family"]
        if "model" in info and info["model"].isdigit():
            model["id"] = info["model"]
        modules = root.read("/proc/modules")
        if modules is not None:
            flags["kernel.loadedmodule"] = {line.split()[0] for line in modules.splitlines() if line.strip()}
        cfg = _kernel_config(root, host.os.kernel)
        if cfg:
            attrs["kernel.config"] = cfg
        devices = _pci_instances(root)
        if devices:
            inst["pci.device"] = devices
        # start-up: the probes load only when NFD artifacts are evaluated
        from compat.host.system import os_release
        release = os_release(root, {})
        if release:
            osr = dict(release)
        nodes = [n for n in root.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", n)]
        if nodes:
            attrs["memory.numa"] = {"is_numa": "true" if len(nodes) > 1 else "false", "node_count": str(len(nodes))}
    if "VERSION_ID" in osr:
        parts = osr["VERSION_ID"].split(".")
        osr["VERSION_ID.major"] = parts[0]
        if len(parts) > 1:
            osr["VERSION_ID.minor"] = parts[1]
    if osr:
        attrs["system.osrelease"] = osr
    if model:
        attrs["cpu.model"] = model
    attrs["local.feature"] = local_facts(host)
    return Features(flags=flags, attributes=attrs, instances=inst)


# -- NFD's own formats ---------------------------------------------------------------------------

def is_nfd_document(data) -> bool:
    if not isinstance(data, Mapping):
        return False
    if data.get("kind") == "NodeFeature" or str(data.get("apiVersion", "")).startswith("nfd.k8s-sigs.io"):
        return True
    return any(k in data for k in ("flags", "attributes", "instances")) and "schema" not in data


def from_export(data: Mapping) -> Features:
    """``nfd export features`` output, or a NodeFeature object (``spec.features``)."""
    flags, attrs, inst = {}, {}, {}
    try:
        if data.get("kind") == "NodeFeature" or "spec" in data:
            data = (data.get("spec") or {}).get("features") or {}
        for name, f in (data.get("flags") or {}).items():
            flags[str(name).lower()] = {str(k) for k in ((f or {}).get("elements") or {}).keys()}
        for name, f in (data.get("attributes") or {}).items():
            attrs[str(name).lower()] = {str(k): str(v) for k, v in ((f or {}).get("elements") or {}).items()}
        for name, f in (data.get("instances") or {}).items():
            inst[str(name).lower()] = [{str(k): str(v) for k, v in ((e or {}).get("attributes") or {}).items()}
                                       for e in ((f or {}).get("elements") or [])]
    except (AttributeError, TypeError) as exc:
        raise BadInput(f"NFD features: unexpected shape ({exc})") from None
    return Features(flags=flags, attributes=attrs, instances=inst)


def _gpu_count(text: str, vendor: str) -> int:
    """The one GPU-count rule (``vocab.values.gpu_count``: 0..HOST_GPUS), as bad input."""
    try:
        return gpu_count(text, f"NFD features: {LOCAL}gpu.{vendor}.count")
    except ValueProblem as exc:
        raise BadInput(str(exc)) from None


def to_host(features: Features, origin: str) -> Host:
    """A compat profile from NFD features (what a scheduler resolving for a node has)."""
    local = dict(features.attributes.get("local.feature", {}))
    local.update(features.attributes.get("local.label", {}))
    get = lambda k: local.get(LOCAL + k)  # noqa: E731
    cpuid = features.flags.get("cpu.cpuid", set())
    levels = [int(f[-1]) for f in cpuid if re.fullmatch(r"X86_64_V\d", f)]
    linux_flags = tuple(sorted(linux_flag(f) for f in cpuid if not f.startswith("X86_64_V")))
    model = features.attributes.get("cpu.model", {})
    vendor = {v: k for k, v in nfd_cpu_vendors().items()}.get(model.get("vendor_id", ""), model.get("vendor_id") or None)
    arch = get("os.arch") or ("amd64" if levels else ("arm64" if "ASIMD" in cpuid else None))
    cpu = CPU(vendor=vendor, features=linux_flags, x86_64_level=max(levels) if levels else None,
              family=arch_families().get(arch or ""))
    target = get("cpu.target")
    if target:
        # start-up: the CPU probe and archspec load only for a NodeFeature host file
        from compat.host.assume import cpu_from_target
        try:
            t = cpu_from_target(target)
            cpu = cpu._replace(target=t.target, generic=t.generic, family=t.family,
                               x86_64_level=cpu.x86_64_level or t.x86_64_level)
        except Exception:  # noqa: BLE001 - an unknown target stays unknown
            pass
    elif cpu.family:
        # start-up: archspec and the CPU probe load only for a NodeFeature host file
        from archspec.cpu.detect import partial_uarch

        from compat.host.cpu import choose_target, x86_level
        chosen, _ = choose_target(cpu.family, partial_uarch(vendor=vendor or "generic", features=set(linux_flags)))
        cpu = cpu._replace(target=chosen.name, generic=chosen.generic.name,
                           x86_64_level=cpu.x86_64_level or x86_level(chosen.generic.name))
    kv = features.attributes.get("kernel.version", {})
    osr = features.attributes.get("system.osrelease", {})
    from compat.host.cpu import oci_variant  # start-up: the CPU probe loads only for a NodeFeature host file
    os_ = OS(arch=arch, kernel=kv.get("full"), distro=osr.get("ID"), distro_version=osr.get("VERSION_ID"),
             distro_name=osr.get("PRETTY_NAME") or osr.get("NAME"), glibc=get("libc.glibc"))
    os_ = os_._replace(variant=oci_variant(arch, cpu))
    gpus: List[GPU] = []
    pci = features.instances.get("pci.device", [])
    for vendor_name in ("nvidia", "amd"):
        vid = gpu_pci()[vendor_name]["vendor"]
        n = _gpu_count(get(f"gpu.{vendor_name}.count"), vendor_name) if get(f"gpu.{vendor_name}.count") \
            else sum(1 for d in pci if d.get("vendor") == vid and d.get("class") in gpu_pci_classes())
        for i in range(n):
            if vendor_name == "nvidia":
                gpus.append(GPU("nvidia", i, cc=get("gpu.cc"), driver=get("gpu.driver"), cuda=get("gpu.cuda.version")))
            else:
                gpus.append(GPU("amd", i, gfx=get("gpu.amd.arch"), rocm=get("gpu.rocm.version")))
    fabrics = [Fabric(type=k[len(LOCAL) + 7:]) for k in sorted(local) if
               k.startswith(LOCAL + "fabric.") and not k.startswith(LOCAL + "fabric.provider.")]
    if not fabrics:
        modules = features.flags.get("kernel.loadedmodule", set())
        ib = fabric_pci()["infiniband"]
        if any(d.get("vendor") == ib["vendor"] and d.get("class") == ib["class"] for d in pci):
            fabrics.append(Fabric("infiniband"))
        for kind in ("efa", "slingshot", "omnipath"):
            if fabric_drivers(kind)[0] in modules:
                fabrics.append(Fabric(kind))
    providers = tuple(k[len(LOCAL) + 16:] for k in sorted(local) if k.startswith(LOCAL + "fabric.provider."))
    impl = get("mpi.implementation")
    mpi = None
    if impl:
        mpi = () if impl == "none" else (MPI(impl, get("mpi.version"), get("mpi.abi")),)
    pmi = tuple(p for p in ("pmi1", "pmi2", "pmix") if get(f"mpi.pmi.{p}") == "true")
    sources = {"host": f"NFD features ({origin})"}
    if not local:
        sources["local.feature"] = "absent: MPI, CUDA driver, compute capability, glibc unknown " \
                                   "(publish them with compat detect --format nfd-features)"
    return Host(os=os_, cpu=cpu, gpus=tuple(gpus), fabrics=tuple(fabrics),
                libfabric=Libfabric(providers=providers) if providers else None,
                mpi=mpi, pmi=pmi if pmi or impl else None, sources=sources)


def load_host_file(path: str, assume=None):
    """``--host FILE``: a compat profile (JSON) or an NFD NodeFeature / ``nfd export
    features`` document (YAML or JSON) -> (host, features or None)."""
    data = load_structured(read_file(path, limits.HOST_FILE_BYTES, f"--host {path}"), f"--host {path}")
    if not is_nfd_document(data):
        return host_mod.load(path, assume=assume), None
    features = from_export(data)
    host = to_host(features, path)
    if assume:
        # start-up: the --assume grammar loads only with --assume
        from compat.host import assume as A
        try:
            host = A.apply(host, A.parse(assume))
        except ValueProblem as exc:
            raise BadInput(f"--assume {exc}") from None
    return host, features
