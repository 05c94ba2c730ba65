"""The host profile: what compat knows about a machine, as small immutable values.

A profile is data, not behaviour: probes build it, ``--assume`` rewrites parts of it,
matchers read it, and it round-trips through JSON (``compat detect --json`` /
``--host FILE``).  Unknown is a first-class answer: ``None`` means "nobody could tell",
an empty tuple means "looked, found none".

The types are NamedTuples rather than dataclasses: a scheduler calls compat per job, and
creating eight frozen dataclasses costs about 10 ms of import time.  Use ``_replace`` to
derive a changed copy.
"""
from __future__ import annotations

from collections.abc import Mapping

from compat.errors import printable
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Optional, Tuple

SCHEMA_ID = "compat.host/v1"


class OS(Record):
    name: str = "linux"
    arch: Optional[str] = None            # OCI spelling: amd64, arm64, ppc64le, riscv64 ...
    variant: Optional[str] = None         # OCI variant the CPU supports: v3 (amd64), v8 (arm64)
    kernel: Optional[str] = None
    distro: Optional[str] = None          # os-release ID
    distro_version: Optional[str] = None
    distro_name: Optional[str] = None     # PRETTY_NAME
    glibc: Optional[str] = None
    features: Tuple[str, ...] = ()        # platform os.features the host offers (none on Linux)
    container: Optional[str] = None       # which container we run in, if any


class CPU(Record):
    target: Optional[str] = None          # archspec microarchitecture name
    vendor: Optional[str] = None          # archspec vendor spelling
    family: Optional[str] = None          # archspec family: x86_64, aarch64, ppc64le ...
    generic: Optional[str] = None         # x86_64_v3, armv8.4a, ...
    features: Optional[Tuple[str, ...]] = None
    model: Optional[str] = None           # model name / brand string, for people
    x86_64_level: Optional[int] = None    # 1..4 on x86-64
    glibc_level: Optional[int] = None     # what ld.so --help says, when it could be asked


class GPU(Record):
    vendor: str                           # nvidia, amd, intel
    index: int = 0
    model: Optional[str] = None
    pci: Optional[str] = None
    cc: Optional[str] = None              # NVIDIA compute capability "9.0"
    gfx: Optional[str] = None             # AMD gfx target "gfx90a"
    driver: Optional[str] = None
    cuda: Optional[str] = None            # the driver's CUDA version "12.4"
    rocm: Optional[str] = None
    memory_mib: Optional[int] = None
    mig: Optional[bool] = None


class Fabric(Record):
    type: str                             # infiniband, roce, efa, slingshot, omnipath
    device: Optional[str] = None
    driver: Optional[str] = None
    link_layer: Optional[str] = None
    state: Optional[str] = None
    rate: Optional[str] = None


class Libfabric(Record):
    version: Optional[str] = None
    providers: Tuple[str, ...] = ()


class Ucx(Record):
    version: Optional[str] = None
    transports: Tuple[str, ...] = ()      # rc_mlx5, dc_mlx5, ud_verbs, tcp, sysv ...


class MPI(Record):
    implementation: str                   # openmpi, mpich, intel-mpi, cray-mpich, mvapich
    version: Optional[str] = None
    abi: Optional[str] = None             # mpich, openmpi, mpi-abi
    launcher: Optional[str] = None        # path of mpirun/mpiexec, or env that revealed it
    library: Optional[str] = None         # the library that answered MPI_Get_library_version
    pmi: Tuple[str, ...] = ()             # what the MPI's own launcher speaks


class Runtime(Record):
    name: str                             # compat/data/runtimes.json: apptainer, podman, enroot ...
    version: Optional[str] = None
    path: Optional[str] = None            # the executable found
    setuid: Optional[bool] = None         # Apptainer/Singularity: starter-suid is root's, setuid bit set
    allow_setuid: Optional[bool] = None   # apptainer.conf / singularity.conf "allow setuid"
    allow_kernel_squashfs: Optional[bool] = None   # "allow kernel squashfs"
    max_loop_devices: Optional[int] = None          # "max loop devices"


class Rootless(Record):
    """What unprivileged runtimes depend on: the kernel's user namespaces, the user's subordinate
    ID ranges, FUSE, unprivileged overlayfs. Each ``None`` is "nobody could tell"."""
    user: Optional[str] = None                        # whose subuid/subgid ranges were looked up
    max_user_namespaces: Optional[int] = None         # /proc/sys/user/max_user_namespaces (0 = off)
    unprivileged_userns_clone: Optional[bool] = None  # kernel.unprivileged_userns_clone (Debian/Ubuntu knob)
    apparmor_restrict_userns: Optional[bool] = None   # kernel.apparmor_restrict_unprivileged_userns (Ubuntu)
    userns: Optional[bool] = None                     # may an unprivileged user create a user namespace
    subuid: Optional[bool] = None                     # /etc/subuid has a range for the user
    subgid: Optional[bool] = None                     # /etc/subgid has a range for the user
    fuse: Optional[bool] = None                       # /dev/fuse is a character device the user may open
    fuse_helpers: Optional[Tuple[str, ...]] = None    # squashfuse, fuse2fs, fuse-overlayfs ... found
    overlay: Optional[bool] = None                    # unprivileged overlayfs (Linux >= 5.11)


class Host(Record):
    os: OS = OS()
    cpu: CPU = CPU()
    gpus: Optional[Tuple[GPU, ...]] = None
    fabrics: Optional[Tuple[Fabric, ...]] = None
    libfabric: Optional[Libfabric] = None
    ucx: Optional[Ucx] = None
    mpi: Optional[Tuple[MPI, ...]] = None
    pmi: Optional[Tuple[str, ...]] = None  # what the site launcher (srun --mpi=list) offers
    runtimes: Optional[Tuple[Runtime, ...]] = None
    rootless: Optional[Rootless] = None
    sources: Mapping[str, str] = {}   # never mutated in place: detect() builds a new dict

    # -- serialisation -------------------------------------------------------------------
    def to_dict(self) -> Dict[str, Any]:
        d = _plain(self)
        d["sources"] = dict(sorted(self.sources.items()))
        return {"schema": SCHEMA_ID, **d}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Host":
        """Load a profile written by :meth:`to_dict` (``compat detect --json``)."""
        def many(key, typ):
            raw = data.get(key)
            return None if raw is None else tuple(_build(typ, x) for x in raw)

        lf = data.get("libfabric")
        ucx = data.get("ucx")
        rootless = data.get("rootless")
        return cls(
            os=_build(OS, data.get("os") or {}),
            cpu=_build(CPU, data.get("cpu") or {}),
            gpus=many("gpus", GPU),
            fabrics=many("fabrics", Fabric),
            libfabric=None if lf is None else _build(Libfabric, lf),
            ucx=None if ucx is None else _build(Ucx, ucx),
            mpi=many("mpi", MPI),
            pmi=None if data.get("pmi") is None else tuple(data["pmi"]),
            runtimes=many("runtimes", Runtime),
            rootless=None if rootless is None else _build(Rootless, rootless),
            sources=dict(data.get("sources") or {}),
        )

    # -- convenience views used by the matchers -------------------------------------------
    def gpus_of(self, vendor: str) -> Optional[Tuple[GPU, ...]]:
        if self.gpus is None:
            return None
        return tuple(g for g in self.gpus if g.vendor == vendor)

    def fabric_types(self) -> Optional[Tuple[str, ...]]:
        if self.fabrics is None:
            return None
        return tuple(dict.fromkeys(f.type for f in self.fabrics))


def known_runtimes(host: "Host") -> "Host":
    """``host`` with only the runtimes this compat knows (compat/data/runtimes.json; an alias
    read as its name), each once: the first listed wins and keeps its place, so the default
    runtime is the first known one. What was left out is noted in
    ``sources["runtimes.ignored"]``: a profile written by a newer compat may name runtimes this
    one cannot judge, kept out rather than refused (spec/host.md, "Saved profiles")."""
    if not host.runtimes:
        return host
    # start-up: the runtime vocabulary loads only for a saved profile that lists runtimes
    from compat.errors import ValueProblem
    from compat.vocab.values import runtime_name
    kept: Dict[str, Runtime] = {}
    notes = []
    for r in host.runtimes:
        try:
            name = runtime_name(r.name)
        except ValueProblem:
            notes.append(f"{r.name}: not a runtime this compat knows")
            continue
        if name in kept:
            notes.append(f"{r.name}: listed again, the first {name} kept")
        else:
            kept[name] = r._replace(name=name)
    if not notes:
        return host._replace(runtimes=tuple(kept.values()))
    sources = dict(host.sources)
    sources["runtimes.ignored"] = printable("; ".join(notes), 4096)
    return host._replace(runtimes=tuple(kept.values()), sources=sources)


def printable_host(host: "Host") -> "Host":
    """``host`` with every string made printable and cut to the schema's lengths (a value read
    from a hostile sysroot or tool output must not forge terminal output or make the saved
    profile fail its own schema)."""
    def clean(obj, limit):
        if isinstance(obj, str):
            return printable(obj, limit)
        if hasattr(obj, "_fields"):
            return type(obj)(*(clean(getattr(obj, f), 1024) for f in obj._fields))
        if isinstance(obj, tuple):
            return tuple(clean(x, 256) for x in obj)
        return obj

    body = clean(host._replace(sources={}), 1024)
    counts = {name: n for name, n in _MAX_ITEMS.items() if len(getattr(body, name) or ()) > n}
    body = body._replace(**{name: getattr(body, name)[:n] for name, n in counts.items()})
    sources = {printable(k, 128): printable(v, 4096) for k, v in list(host.sources.items())[:200]}
    for name, n in counts.items():
        sources[f"{name}.bound"] = f"only the first {n} kept (schemas/host.schema.json maxItems)"
    return body._replace(sources=sources)


#: the schema's maxItems for the lists a probe fills from what it finds
_MAX_ITEMS = {"gpus": 64, "fabrics": 64, "mpi": 16, "pmi": 16, "runtimes": 32}


def _plain(obj: Any) -> Any:
    if hasattr(obj, "_fields"):
        return {name: _plain(getattr(obj, name)) for name in obj._fields}
    if isinstance(obj, tuple):
        return [_plain(x) for x in obj]
    if isinstance(obj, Mapping):
        return {k: _plain(v) for k, v in obj.items()}
    return obj


def _build(typ, raw: Mapping[str, Any]):
    names = typ._fields
    kwargs = {}
    for key, value in raw.items():
        if key not in names:
            continue  # tolerate fields written by newer versions
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, float):
            value = int(value)          # JSON Schema calls 4.0 an integer; the profile has no floats
        kwargs[key] = value
    return typ(**kwargs)
