"""NFD's own documents in: ``nfd export features`` JSON or a NodeFeature object (YAML/JSON)
as :class:`~compat.nfd.rules.Features` (:func:`from_export`), and a compat profile from them
(:func:`to_host`), so ``--host`` takes a NodeFeature (:func:`load_host_file`)."""
from __future__ import annotations

import re
from collections.abc import Mapping

import compat.host as host_mod
from compat import limits
from compat.errors import BadInput, ValueProblem
from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host, Libfabric
from compat.io import load_structured, read_file
from compat.nfd.cpuid import linux_flag
from compat.vocab.data import arch_families, fabric_drivers, fabric_pci, gpu_pci, gpu_pci_classes, nfd_cpu_vendors
from compat.vocab.values import gpu_count

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import List


def is_nfd_document(data) -> bool:
    if not isinstance(data, Mapping):
        return False
    if data.get("kind") == "NodeFeature" or str(data.get("apiVersion", "")).startswith("nfd.k8s-sigs.io"):
        return True
    return any(k in data for k in ("flags", "attributes", "instances")) and "schema" not in data


def from_export(data: Mapping) -> Features:
    """``nfd export features`` output, or a NodeFeature object (``spec.features``)."""
    # start-up: NFD's rule model loads only for an NFD document (``--host`` is mostly a compat profile)
    from compat.nfd.rules import Features
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


def _gpu_count(text: str, key: str) -> int:
    """The one GPU-count rule (``vocab.values.gpu_count``: 0..HOST_GPUS), as bad input."""
    try:
        return gpu_count(text, f"NFD features: {key}")
    except ValueProblem as exc:
        raise BadInput(str(exc)) from None


def to_host(features: Features, origin: str) -> Host:
    """A compat profile from NFD features (what a scheduler resolving for a node has)."""
    # start-up: NFD's feature model loads only for an NFD document
    from compat.nfd.features import LOCAL, runtimes_from_features
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
        count = f"{LOCAL}gpu.{vendor_name}.count"
        n = _gpu_count(local[count], count) if local.get(count) \
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
    runtimes, rootless = runtimes_from_features(local)
    return Host(os=os_, cpu=cpu, gpus=tuple(gpus), fabrics=tuple(fabrics),
                libfabric=Libfabric(providers=providers) if providers else None,
                mpi=mpi, pmi=pmi if pmi or impl else None, runtimes=runtimes, rootless=rootless, sources=sources)


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
