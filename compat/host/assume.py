"""``--assume KEY=VALUE``: state a host fact instead of detecting it.

Keys are the flat annotation keys without the ``org.hpc-compat.`` prefix, describing the
host.  An assumed fact replaces the detected one and its source reads
``assumed (--assume KEY=VALUE)``.  ``gpu.vendor=none``, ``mpi.implementation=none`` and
``fabric=tcp`` state an absence.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from compat import limits
from compat.errors import BadInput, ValueProblem, printable
from compat.vocab.data import machine_archs, runtimes as runtime_table
from compat.host.profile import CPU, GPU, MPI, Fabric, Host, Libfabric, Rootless, Runtime
from compat.vocab import values as V

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Iterable, List, Optional, Tuple, Union

_FEATURE_NAME = re.compile(r"[a-z0-9_.]{1,64}", re.ASCII)

KEYS = ("os.arch", "os.variant", "os.kernel", "os.glibc", "libc.glibc", "os.distro",
        "cpu.target", "cpu.vendor", "cpu.features",
        "gpu.vendor", "gpu.count", "gpu.cc", "gpu.driver", "gpu.cuda.version",
        "gpu.amd.arch", "gpu.rocm.version",
        "mpi.implementation", "mpi.version", "mpi.abi", "mpi.pmi",
        "fabric", "fabric.providers",
        "runtime", "runtime.version", "userns", "subuid", "subgid", "fuse", "setuid", "overlay")

#: the yes/no facts of Host.rootless an --assume key sets directly
ROOTLESS_KEYS = ("userns", "subuid", "subgid", "fuse", "overlay")
_YES_NO = {"yes": True, "true": True, "no": False, "false": False}
_RUNTIME_VERSION = re.compile(r"\d[\w.+~-]{0,63}", re.ASCII)


def parse(items: Union[None, Mapping[str, str], Iterable[str]]) -> Dict[str, str]:
    """``["k=v", ...]`` or a mapping -> validated dict; an unknown key or a value outside its
    grammar or bounds is bad input naming the key, the value and what is wanted."""
    if not items:
        return {}
    pairs: List[Tuple[str, str]] = []
    if isinstance(items, Mapping):
        pairs = [(str(k), str(v)) for k, v in items.items()]
    elif isinstance(items, (str, bytes)):
        raise BadInput(f"--assume {printable(items)}: expected a list of KEY=VALUE or a mapping")
    else:
        for item in items:
            key, sep, value = str(item).partition("=")
            if not sep or not key.strip():
                raise BadInput(f"--assume {printable(str(item))}: expected KEY=VALUE")
            pairs.append((key.strip(), value.strip()))
    out = {}
    for key, value in pairs:
        if key.startswith(V.PREFIX):
            key = key[len(V.PREFIX):]
        if key not in KEYS:
            raise BadInput(f"--assume {printable(key, 80)}: unknown key (known: {', '.join(KEYS)})")
        if key in out and out[key] != value.strip():
            raise BadInput(f"--assume {key}: given twice ({printable(out[key], 40)} and {printable(value, 40)})")
        out[key] = check_value(key, value)
    return out


def check_value(key: str, value: str) -> str:
    """``value`` stripped, or BadInput ``--assume KEY=VALUE: wanted ...``."""
    value = value.strip()
    wanted = _wanted(key, value)
    if wanted:
        raise BadInput(f"--assume {key}={printable(value, 80)}: wanted {wanted}")
    return value


#: key -> (grammar, what is wanted) for the values that are checked by pattern alone
_GRAMMARS = {
    "os.arch": (re.compile(r"(?i:[a-z0-9_-]{1,32})", re.ASCII), "an architecture (amd64, arm64, ppc64le, riscv64)"),
    "os.variant": (re.compile(r"v\d{1,2}(?:\.\d{1,2})?|", re.ASCII),
                   "an OCI variant (v1..v4 on amd64, v8, v8.2, v9 on arm64) or nothing"),
    "os.kernel": (re.compile(r"\d{1,4}(?:\.\d{1,6}){0,3}[\w.+~-]{0,200}", re.ASCII), "a kernel release (6.1.0-18-amd64)"),
    "os.glibc": (re.compile(r"\d{1,4}\.\d{1,4}", re.ASCII), "a glibc version X.Y (2.35)"),
    "libc.glibc": (re.compile(r"\d{1,4}\.\d{1,4}", re.ASCII), "a glibc version X.Y (2.35)"),
    "os.distro": (re.compile(r"[a-z0-9._-]{1,64}", re.ASCII), "an os-release ID (rhel, ubuntu, sles)"),
    "gpu.cc": (re.compile(r"\d{1,2}\.\d{1,2}", re.ASCII), "a compute capability M.m (9.0)"),
    "gpu.driver": (re.compile(r"\d{1,4}(?:\.\d{1,6}){0,3}", re.ASCII), "a driver version (550.54.14)"),
    "gpu.cuda.version": (re.compile(r"\d{1,3}(?:\.\d{1,3}){0,2}", re.ASCII), "a CUDA version X.Y (12.4)"),
    "gpu.amd.arch": (re.compile(r"(?i:gfx[0-9a-f]{3,4})", re.ASCII), "an AMD gfx target (gfx90a, gfx942)"),
    "gpu.rocm.version": (re.compile(r"\d{1,3}(?:\.\d{1,4}){0,2}", re.ASCII), "a ROCm version (6.1.2)"),
    "mpi.version": (re.compile(r"\d[\w.+-]{0,63}", re.ASCII), "an MPI version (4.1.5)"),
}


def _grammar(key: str):
    compiled, wanted = _GRAMMARS[key]
    return lambda v: None if compiled.fullmatch(v) else wanted


def _call(fn, wanted: str):
    def check(v):
        try:
            fn(v)
        except (ValueProblem, BadInput):
            return wanted
        return None
    return check


def _target(v: str) -> Optional[str]:
    try:
        cpu_from_target(v.lower())
    except BadInput:
        return "an archspec microarchitecture (zen4, sapphirerapids, neoverse_v2, ...)"
    return None


def _features(v: str) -> Optional[str]:
    items = V.csv(v)
    if len(items) > 4096 or not all(_FEATURE_NAME.fullmatch(f) for f in items):
        return "a comma-separated list of CPU feature names (avx2,avx512f)"
    return None


#: key -> check(value) returning what is wanted when the value is not it.
_CHECKS = {
    **{key: _grammar(key) for key in _GRAMMARS},
    "cpu.target": _target,
    "cpu.vendor": _call(V.cpu_vendor, "a CPU vendor (GenuineIntel, AuthenticAMD, ARM, ...)"),
    "cpu.features": _features,
    "gpu.vendor": _call(V.gpu_vendor, f"one of {', '.join(V.GPU_VENDORS)}"),
    "gpu.count": _call(V.gpu_count, f"a whole number of GPUs from 0 to {limits.HOST_GPUS}"),
    "mpi.implementation": _call(V.mpi_implementation, "an MPI (openmpi, mpich, intel-mpi, cray-mpich, "
                                                      "mvapich) or none"),
    "mpi.abi": _call(V.mpi_abi, "an MPI ABI (mpich, openmpi, mpi-abi)"),
    "mpi.pmi": _call(V.pmi_list, "a list of pmi1, pmi2, pmix"),
    "fabric": _call(V.fabric_list, "a list of infiniband, roce, efa, slingshot, omnipath, tcp"),
    "fabric.providers": _call(V.provider_list, "a list of libfabric provider names (verbs, cxi, efa)"),
    "runtime": lambda v: None if runtime_list(v) is not None else (
        f"a list of runtimes NAME[@VERSION], each once ({', '.join(runtime_table())}), or none"),
    "runtime.version": lambda v: None if _RUNTIME_VERSION.fullmatch(v) else "a runtime version (1.3.4)",
    **{key: (lambda v: None if v.lower() in _YES_NO else "yes or no") for key in (*ROOTLESS_KEYS, "setuid")},
}


def runtime_list(value: str) -> Optional[List[Tuple[str, Optional[str]]]]:
    """``apptainer@1.3.4,podman`` -> [(name, version or None), ...]; ``none`` -> []; a name
    may be a runtime's executable (``ch-run``); None when the value is not such a list."""
    if value.strip().lower() == "none":
        return []
    names = {exe: name for name, spec in runtime_table().items() for exe in (name, *spec["executables"])}
    out = []
    for item in V.csv(value):
        name, at, version = item.partition("@")
        name = names.get(name.strip().lower())
        if name is None or (at and not _RUNTIME_VERSION.fullmatch(version.strip())):
            return None
        out.append((name, version.strip() if at else None))
    return out if out and len({n for n, _ in out}) == len(out) else None


def _wanted(key: str, value: str) -> Optional[str]:
    if len(value) > limits.ASSUME_VALUE_CHARS:
        return f"at most {limits.ASSUME_VALUE_CHARS} characters"
    return _CHECKS[key](value)


def apply_checked(host: Host, a: Mapping[str, str]) -> Host:
    """:func:`apply` with a value problem as bad input (``--assume KEY: ...``)."""
    try:
        return apply(host, a)
    except ValueProblem as exc:
        raise BadInput(f"--assume {exc}") from None


def arch_of_family(family: str) -> Optional[str]:
    return machine_archs().get(family)


def cpu_from_target(name: str) -> CPU:
    # start-up: archspec (and the CPU probe module) load only for a cpu.target assumption
    from archspec.cpu import TARGETS
    from compat.host.cpu import x86_level
    t = TARGETS.get(name)
    if t is None:
        raise BadInput(f"--assume cpu.target={name}: not an archspec microarchitecture")
    generic = t.generic.name
    return CPU(target=t.name, vendor=t.vendor, family=t.family.name, generic=generic,
               features=tuple(sorted(t.features)), model=None, x86_64_level=x86_level(generic))


def apply(host: Host, a: Mapping[str, str]) -> Host:
    if not a:
        return host
    sources = dict(host.sources)

    def mark(*keys):
        """Record the given keys (all assumed) as the source of their facts; return those of
        ``keys`` that were assumed at all (``mark(*family)`` for a family of keys)."""
        given = [k for k in keys if k in a]
        for k in given:
            sources[k] = f"assumed (--assume {k}={a[k]})"
        return given

    os_ = host.os
    cpu = host.cpu
    if "cpu.target" in a:
        cpu = cpu_from_target(a["cpu.target"].strip().lower())
        mark("cpu.target")
        if "os.arch" not in a:
            os_ = os_._replace(arch=arch_of_family(cpu.family), variant=None)
    if "cpu.vendor" in a:
        cpu = cpu._replace(vendor=V.cpu_vendor(a["cpu.vendor"]))
        mark("cpu.vendor")
    if "cpu.features" in a:
        cpu = cpu._replace(features=tuple(sorted(V.csv(a["cpu.features"]))))
        mark("cpu.features")
    if "os.arch" in a:
        os_ = os_._replace(arch=V.oci_arch(a["os.arch"]), variant=None)
        mark("os.arch")
        if "cpu.target" in a and cpu.family and arch_of_family(cpu.family) != os_.arch:
            raise BadInput(f"--assume cpu.target={a['cpu.target']} is a CPU of the {cpu.family} family; it contradicts "
                           f"--assume os.arch={printable(a['os.arch'], 40)}")
    if "os.variant" in a:
        os_ = os_._replace(variant=a["os.variant"] or None)
        mark("os.variant")
    if "os.kernel" in a:
        os_ = os_._replace(kernel=a["os.kernel"])
        mark("os.kernel")
    for k in ("os.glibc", "libc.glibc"):
        if k in a:
            os_ = os_._replace(glibc=a[k])
            mark(k)
    if "os.distro" in a:
        os_ = os_._replace(distro=a["os.distro"])
        mark("os.distro")
    if os_.variant is None:
        # start-up: the CPU module (and archspec) load only when a variant is to be worked out
        from compat.host.cpu import oci_variant
        os_ = os_._replace(variant=oci_variant(os_.arch, cpu))

    return host._replace(os=os_, cpu=cpu, gpus=_gpus(host, a, mark),
                               mpi=_mpi(host, a, mark), pmi=_pmi(host, a, mark),
                               fabrics=_fabrics(host, a, mark), libfabric=_libfabric(host, a, mark),
                               runtimes=_runtimes(host, a, mark), rootless=_rootless(host, a, mark),
                               sources=sources)


def _gpus(host: Host, a, mark):
    if not mark("gpu.vendor", "gpu.count", "gpu.cc", "gpu.driver", "gpu.cuda.version", "gpu.amd.arch",
                "gpu.rocm.version"):
        return host.gpus
    vendor = V.gpu_vendor(a["gpu.vendor"]) if "gpu.vendor" in a else None
    if vendor == "none":
        return ()
    if vendor is None:
        vendor = "amd" if ("gpu.amd.arch" in a or "gpu.rocm.version" in a) else "nvidia"
    existing = [g for g in (host.gpus or ()) if g.vendor == vendor]
    others = [g for g in (host.gpus or ()) if g.vendor != vendor]
    count = len(existing) or 1
    if "gpu.count" in a:
        count = int(check_value("gpu.count", a["gpu.count"]))
    base = existing or [GPU(vendor=vendor)]
    gpus = []
    for i in range(count):
        g = base[min(i, len(base) - 1)]._replace(index=i)
        if "gpu.cc" in a:
            g = g._replace(cc=V.compute_capability(a["gpu.cc"], "gpu.cc"))
        if "gpu.driver" in a:
            # start-up: the GPU probes load only for a gpu.driver assumption
            from compat.host.gpu import cuda_for_driver
            g = g._replace(driver=a["gpu.driver"],
                                    cuda=g.cuda if "gpu.cuda.version" in a else cuda_for_driver(a["gpu.driver"]))
        if "gpu.cuda.version" in a:
            g = g._replace(cuda=V.major_minor(a["gpu.cuda.version"], "gpu.cuda.version"))
        if "gpu.amd.arch" in a:
            g = g._replace(gfx=a["gpu.amd.arch"].strip().lower())
        if "gpu.rocm.version" in a:
            g = g._replace(rocm=a["gpu.rocm.version"])
        gpus.append(g)
    return tuple(others + gpus)


def _mpi(host: Host, a, mark):
    if not mark("mpi.implementation", "mpi.version", "mpi.abi"):
        return host.mpi
    impl = V.mpi_implementation(a["mpi.implementation"]) if "mpi.implementation" in a else None
    if impl == "none":
        return ()
    current = list(host.mpi or ())
    first = current[0] if current else None
    if impl is None:
        if first is None:
            raise BadInput("--assume mpi.version/mpi.abi need mpi.implementation on a host without MPI")
        impl = first.implementation
    abi_of = V.mpi_abi_of
    entry = MPI(implementation=impl,
                version=a.get("mpi.version") or (first.version if first and first.implementation == impl else None),
                abi=V.mpi_abi(a["mpi.abi"]) if "mpi.abi" in a else abi_of(impl),
                launcher="assumed")
    return (entry,) + tuple(m for m in current if m.implementation != impl)


def _pmi(host: Host, a, mark):
    if "mpi.pmi" not in a:
        return host.pmi
    mark("mpi.pmi")
    return tuple(dict.fromkeys(V.pmi_list(a["mpi.pmi"], "mpi.pmi")))


def _fabrics(host: Host, a, mark):
    if "fabric" not in a:
        return host.fabrics
    mark("fabric")
    kinds = [f for f in dict.fromkeys(V.fabric_list(a["fabric"], "fabric")) if f != "tcp"]
    return tuple(Fabric(type=k, device="assumed") for k in kinds)


def _libfabric(host: Host, a, mark):
    if "fabric.providers" not in a:
        return host.libfabric
    mark("fabric.providers")
    version = host.libfabric.version if host.libfabric else None
    return Libfabric(version=version, providers=tuple(V.csv(a["fabric.providers"])))


def _runtimes(host: Host, a, mark):
    """``runtime`` replaces the list (keeping what was detected of a runtime named again),
    ``runtime.version`` sets the first one's version, ``setuid`` the setuid facts of the
    Apptainer/Singularity runtimes; a pair that contradicts itself is refused."""
    if not mark("runtime", "runtime.version", "setuid"):
        return host.runtimes
    rts = list(host.runtimes or ())
    if "runtime" in a:
        have = {r.name: r for r in rts}
        listed = runtime_list(a["runtime"]) or []
        rts = [have.get(name, Runtime(name=name))._replace(version=version or have.get(name, Runtime(name)).version)
               for name, version in listed]
        first = listed[0][1] if listed else None
        if "runtime.version" in a and first and first != a["runtime.version"]:
            raise BadInput(f"--assume runtime={printable(a['runtime'], 80)} gives {listed[0][0]} version {first}; "
                           f"it contradicts --assume runtime.version={printable(a['runtime.version'], 40)}")
    if "runtime.version" in a:
        if not rts:
            raise BadInput("--assume runtime.version needs a runtime on the host (--assume runtime=NAME)")
        rts[0] = rts[0]._replace(version=a["runtime.version"])
    if "setuid" in a:
        yes = _YES_NO[a["setuid"].lower()]
        setuid_capable = [i for i, r in enumerate(rts) if "starter_suid" in runtime_table().get(r.name, {})]
        if not setuid_capable:
            raise BadInput(f"--assume setuid={printable(a['setuid'], 10)} needs an Apptainer or Singularity "
                           "runtime on the host (--assume runtime=apptainer)")
        for i in setuid_capable:
            rts[i] = rts[i]._replace(setuid=yes, allow_setuid=True) if yes else rts[i]._replace(setuid=False)
    return tuple(rts)


def _rootless(host: Host, a, mark):
    given = mark(*ROOTLESS_KEYS)
    if not given:
        return host.rootless
    return (host.rootless or Rootless())._replace(**{k: _YES_NO[a[k].lower()] for k in given})
