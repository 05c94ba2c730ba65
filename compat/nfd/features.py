"""The host in NFD's feature model (NodeFeature documents back into a host:
compat.nfd.nodefeature).

* :func:`from_host` — the features NFD rules read (``cpu.cpuid`` with ``X86_64_V1..V4``,
  ``cpu.model``, ``kernel.version``, ``kernel.loadedmodule``, ``kernel.config``,
  ``pci.device``, ``system.osrelease``, ``memory.numa``) from a compat profile plus, when a
  :class:`~compat.host.root.Root` is given, the files below it (live or ``--sysroot``); and
  ``local.feature`` with compat's own facts.
* :func:`local_feature_file` — ``compat detect --format nfd-features``: an NFD local feature
  file carrying what NFD cannot see (MPI, libfabric providers, CUDA driver, compute
  capability, glibc, archspec target, container runtimes and the rootless facts).
"""
from __future__ import annotations

import re

from compat import limits
from compat.host.profile import CPU, Host, Rootless, Runtime
from compat.nfd.cpuid import cpuid_name
from compat.nfd.rules import Features
from compat.vocab.data import fuse_helpers, nfd_cpu_vendors, runtimes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Set

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
    for key, value in runtime_features(host).items():
        put(key, value)
    return out


def _flag(value: Optional[bool]) -> Optional[str]:
    return None if value is None else ("true" if value else "false")


#: the Rootless facts exported as ``rootless.<fact>`` (true/false; unknown: no feature)
ROOTLESS_FEATURES = ("userns", "subuid", "subgid", "fuse", "overlay", "unprivileged_userns_clone",
                     "apparmor_restrict_userns")
#: the Runtime facts exported as ``runtime.<name>.<fact>`` (true/false; unknown: no feature)
RUNTIME_FLAGS = ("suid_starter", "allow_setuid", "allow_kernel_squashfs")
#: Runtime.suid_starter is the record's ``setuid`` field: ``runtime.<name>.setuid`` is taken
#: by the combined "setuid mode works" that NFD rules read
_FIELD = {"suid_starter": "setuid"}
_COUNT = re.compile(r"\d{1,10}")
_COUNT_MAX = 2**31 - 1           # the profile schema's maximum for the counts


def runtime_features(host: Host) -> Dict[str, Optional[str]]:
    """Runtime and rootless facts under compat's names (spec/host.md "NFD features"):
    ``runtime.<name>`` = version (``true`` when unknown), ``runtime.<name>.rank`` = its place
    in the host's list (1 is the default runtime), ``runtime.<name>.setuid`` = whether setuid
    mode works (a root setuid starter and ``allow setuid`` not ``no``), each of
    :data:`RUNTIME_FLAGS` and ``max_loop_devices``; ``rootless.<fact>`` = true/false,
    ``rootless.user``, ``rootless.max_user_namespaces``, ``rootless.fuse.<helper>`` = true and
    ``rootless.fuse_helpers`` = how many (present when the helpers were looked for).
    Everything :func:`runtimes_from_features` needs to read back the same facts but the
    executable's path (a file name on this node, not a fact about it)."""
    out: Dict[str, Optional[str]] = {}
    for rank, r in enumerate(host.runtimes or (), 1):
        out[f"runtime.{r.name}"] = r.version or "true"
        out[f"runtime.{r.name}.rank"] = str(rank)
        if r.setuid is not None:
            out[f"runtime.{r.name}.setuid"] = _flag(bool(r.setuid and r.allow_setuid is not False))
        for fact in RUNTIME_FLAGS:
            out[f"runtime.{r.name}.{fact}"] = _flag(getattr(r, _FIELD.get(fact, fact)))
        if r.max_loop_devices is not None:
            out[f"runtime.{r.name}.max_loop_devices"] = str(r.max_loop_devices)
    x = host.rootless
    if x is not None:
        for fact in ROOTLESS_FEATURES:
            out[f"rootless.{fact}"] = _flag(getattr(x, fact))
        out["rootless.user"] = x.user
        if x.max_user_namespaces is not None:
            out["rootless.max_user_namespaces"] = str(x.max_user_namespaces)
        if x.fuse_helpers is not None:
            out["rootless.fuse_helpers"] = str(len(x.fuse_helpers))
        for helper in x.fuse_helpers or ():
            out[f"rootless.fuse.{helper}"] = "true"
    return out


def _count(value: Optional[str]) -> Optional[int]:
    """A count the profile schema allows (0 .. 2^31-1), else unknown."""
    n = int(value) if value and _COUNT.fullmatch(value) else None
    return n if n is not None and n <= _COUNT_MAX else None


def runtimes_from_features(local: Dict[str, str]):
    """The reverse of :func:`runtime_features` for a NodeFeature host: (runtimes, rootless),
    each None when the features say nothing of them. A file written before the separate
    facts were exported (only ``runtime.<name>.setuid``) reads as before: starter and
    ``allow setuid`` both that value; runtimes without a rank keep the table's order."""
    get = lambda k: local.get(LOCAL + k)  # noqa: E731
    flag = lambda k: {"true": True, "false": False}.get(get(k) or "")  # noqa: E731
    count = lambda k: _count(get(k))  # noqa: E731
    found = []
    for order, name in enumerate(runtimes()):
        value = get(f"runtime.{name}")
        if not value:
            continue
        setuid = flag(f"runtime.{name}.setuid")
        facts = {_FIELD.get(f, f): flag(f"runtime.{name}.{f}") for f in RUNTIME_FLAGS}
        if facts["setuid"] is None and facts["allow_setuid"] is None:
            facts.update(setuid=setuid, allow_setuid=setuid)
        rank = count(f"runtime.{name}.rank")
        found.append(((rank if rank is not None else 1 << 30, order),
                      Runtime(name=name, version=None if value == "true" else value,
                              max_loop_devices=count(f"runtime.{name}.max_loop_devices"), **facts)))
    found = [r for _, r in sorted(found, key=lambda e: e[0])]
    facts = {fact: flag(f"rootless.{fact}") for fact in ROOTLESS_FEATURES}
    facts.update(user=get("rootless.user"), max_user_namespaces=count("rootless.max_user_namespaces"))
    helpers = tuple(h for h in fuse_helpers() if get(f"rootless.fuse.{h}") == "true")
    if helpers or count("rootless.fuse_helpers") is not None:
        facts["fuse_helpers"] = helpers
    rootless = Rootless(**facts) if any(v is not None for v in facts.values()) else None
    return (tuple(found) if found else None), rootless


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
