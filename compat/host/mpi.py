"""MPI: every MPI a user could launch with, and what the site launcher speaks (PMI).

Sources, strongest first:

1. the library's own ``MPI_Get_library_version`` (legal before ``MPI_Init``), called through
   ctypes in a child Python with a timeout, for each ABI soname the loader can find;
2. ``mpirun``/``mpiexec`` on PATH and their ``--version`` texts (Open MPI, MPICH Hydra,
   Intel MPI, MVAPICH, Cray);
3. the Cray programming environment (``CRAY_MPICH_VERSION``);
4. under a sysroot, files only: pkg-config files and library sonames.

The ``mpirun`` on PATH comes first in the list: it is the MPI a user gets by default.
PMI: ``srun --mpi=list`` or Slurm's ``mpi_*.so`` plugin files.
"""
from __future__ import annotations

import json
import os
import re
import sys

from compat.host.cache import ProbeCache, is_library_answers, is_text
from compat.host.profile import MPI
from compat.host.root import Root
from compat.vocab.data import mpi_sonames

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple


_CHILD = r"""
import ctypes, json, sys
out = []
for name in sys.argv[1:]:
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        continue
    buf = ctypes.create_string_buffer(8192)
    n = ctypes.c_int(0)
    try:
        rc = lib.MPI_Get_library_version(buf, ctypes.byref(n))
    except AttributeError:
        continue
    out.append({"soname": name, "text": buf.value.decode("utf-8", "replace") if rc == 0 else None})
print(json.dumps(out))
"""


from compat.vocab.values import mpi_abi_of as abi_of  # noqa: E402  (re-exported for probes)

_INTEL_MPI = re.compile(r"Intel\(R\) MPI Library[^\n]{0,200}?Version\s+([\w.]+)")
_OPEN_MPI = re.compile(r"\((?:Open MPI|OpenRTE)\)\s+(\d[\w.]*)")
_OPEN_MPI_V = re.compile(r"Open MPI v(\d[\w.]*)")
_MVAPICH = re.compile(r"MVAPICH2?\s+(?:Version:?\s*)?(\d[\w.]*)", re.I)
_CRAY = re.compile(r"cray", re.I)
_MPICH_WORD = re.compile(r"MPICH")
_CRAY_VERSION = re.compile(r"(?:CRAY MPICH version|Version:?)\s*(\d[\w.]*)", re.I)
_MPICH_VERSION = re.compile(r"MPICH Version:\s*(\d[\w.]*)")
_HYDRA = re.compile(r"HYDRA build details")
_HYDRA_VERSION = re.compile(r"Version:\s+(\d[\w.]*)")
_PMI_MANAGER = re.compile(r"Process Manager:\s+pmi\b")
_PC_VERSION = re.compile(r"^Version:\s*(\S+)", re.M)
_SRUN_MPI = re.compile(r"^[ \t]*(?:srun:[ \t]*)?(?:mpi/)?([\w-]+)[ \t]*$", re.M)


def parse_version_text(text: str) -> Optional[Tuple[str, Optional[str]]]:
    """(implementation, version) from an ``mpirun --version`` or library version text."""
    m = _INTEL_MPI.search(text)
    if m:
        return "intel-mpi", m.group(1)
    m = _OPEN_MPI.search(text) or \
        _OPEN_MPI_V.search(text)
    if m:
        return "openmpi", m.group(1)
    m = _MVAPICH.search(text)
    if m:
        return "mvapich", m.group(1)
    if _CRAY.search(text) and _MPICH_WORD.search(text):
        m = _CRAY_VERSION.search(text)
        return "cray-mpich", m.group(1) if m else None
    m = _MPICH_VERSION.search(text) or \
        (_HYDRA.search(text) and _HYDRA_VERSION.search(text))
    if m:
        return "mpich", m.group(1)
    return None


def _launcher_pmi(implementation: str, text: str) -> Tuple[str, ...]:
    if implementation == "openmpi":
        return ("pmix",)
    if "Process Manager:" in text and _PMI_MANAGER.search(text):
        return ("pmi1", "pmi2")
    return ()


def _merge(found: List[MPI], new: MPI) -> None:
    for i, old in enumerate(found):
        same_version = not old.version or not new.version or old.version == new.version
        if old.implementation == new.implementation and same_version:
            found[i] = MPI(implementation=old.implementation, version=old.version or new.version,
                           abi=old.abi or new.abi, launcher=old.launcher or new.launcher,
                           library=old.library or new.library, pmi=old.pmi or new.pmi)
            return
    found.append(new)


def _library_probe(root: Root, cache: ProbeCache) -> List[dict]:
    names = list(mpi_sonames())

    def compute():
        out = root.run([sys.executable, "-S", "-c", _CHILD, *names], timeout=5.0)
        if not out:
            return []
        try:
            return json.loads(out.strip().splitlines()[-1])
        except (ValueError, IndexError):
            return []

    key = "mpi-libs|" + root.env.get("LD_LIBRARY_PATH", "")
    return cache.get(key, [sys.executable, "/etc/ld.so.cache"], compute, is_library_answers)


def _launchers(root: Root, cache: ProbeCache) -> List[Tuple[str, str]]:
    seen = {}
    for name in ("mpirun", "mpiexec"):
        path = root.which(name)
        if not path:
            continue
        real = os.path.realpath(path)
        if real in seen:
            continue
        text = cache.get(f"version|{real}", [real],
                         lambda: root.run([real, "--version"]) or "", is_text)
        seen[real] = (path, text)
    return list(seen.values())


def probe_live(root: Root, sources: Dict[str, str], cache: ProbeCache) -> Tuple[MPI, ...]:
    found: List[MPI] = []
    used = []
    for path, text in _launchers(root, cache):
        parsed = parse_version_text(text or "")
        if parsed:
            impl, ver = parsed
            _merge(found, MPI(implementation=impl, version=ver, abi=abi_of(impl), launcher=path,
                              pmi=_launcher_pmi(impl, text)))
            used.append(f"{path} --version")
    if root.env.get("CRAY_MPICH_VERSION") or root.env.get("CRAY_MPICH_DIR"):
        _merge(found, MPI(implementation="cray-mpich", abi="mpich",
                          version=root.env.get("CRAY_MPICH_VERSION"),
                          launcher="srun (CRAY_MPICH_* environment)", pmi=("pmi2",)))
        used.append("CRAY_MPICH_* environment")
    abi_by_soname = mpi_sonames()
    for entry in _library_probe(root, cache):
        parsed = parse_version_text(entry.get("text") or "")
        abi = abi_by_soname.get(entry["soname"])
        if parsed:
            impl, ver = parsed
            _merge(found, MPI(implementation=impl, version=ver,
                              abi="mpi-abi" if abi == "mpi-abi" else abi_of(impl),
                              library=entry["soname"]))
            used.append(f"MPI_Get_library_version({entry['soname']})")
    sources["mpi"] = ", ".join(used) if used else "no mpirun/mpiexec on PATH, no MPI library found"
    return tuple(found)


def probe_files(root: Root, sources: Dict[str, str]) -> Optional[Tuple[MPI, ...]]:
    """Under a sysroot: pkg-config files and library names, nothing executed; None (unknown)
    when nothing was found and a library directory could not be listed."""
    found: List[MPI] = []
    used: List[str] = []
    unreadable: List[str] = []
    pcs = {"ompi.pc": "openmpi", "mpich.pc": "mpich", "impi.pc": "intel-mpi",
           "mvapich2.pc": "mvapich", "cray-mpich.pc": "cray-mpich"}
    libdirs = ["/usr/lib", "/usr/lib64", "/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
               "/usr/lib/powerpc64le-linux-gnu", "/usr/local/lib", "/usr/lib64/openmpi/lib",
               "/usr/lib64/mpich/lib", "/usr/lib/x86_64-linux-gnu/openmpi/lib"]
    for pattern in ("/opt/*/lib", "/opt/*/lib64", "/opt/*/*/lib", "/opt/*/*/lib64"):
        libdirs += root.glob(pattern)
    for d in libdirs:
        for pc, impl in pcs.items():
            text = root.read(f"{d}/pkgconfig/{pc}")
            if text:
                m = _PC_VERSION.search(text)
                _merge(found, MPI(implementation=impl, version=m.group(1) if m else None,
                                  abi=abi_of(impl), library=f"{d}/pkgconfig/{pc}"))
                used.append(root.path(f"{d}/pkgconfig/{pc}"))
        listed = root.scan(d)
        if listed is None:
            unreadable.append(root.path(d))
        names = set(listed or ())
        if "libmpi_abi.so" in names or any(n.startswith("libmpi_abi.so.") for n in names):
            _merge(found, MPI(implementation="mpich", abi="mpi-abi", library=f"{d}/libmpi_abi.so"))
            used.append(root.path(f"{d}/libmpi_abi.so"))
    if not found and unreadable:
        sources["mpi"] = f"unknown: cannot list {', '.join(unreadable)}"
        return None
    sources["mpi"] = ", ".join(used) if used else f"no MPI pkg-config file or library below {root.path('/')}"
    return tuple(found)


def probe_mpi(root: Root, sources: Dict[str, str], cache: ProbeCache) -> Optional[Tuple[MPI, ...]]:
    return probe_live(root, sources, cache) if root.live else probe_files(root, sources)


SLURM_PLUGIN_DIRS = ("/usr/lib64/slurm", "/usr/lib/slurm", "/usr/lib/x86_64-linux-gnu/slurm-wlm",
                     "/usr/lib/aarch64-linux-gnu/slurm-wlm", "/usr/local/lib/slurm",
                     "/opt/slurm/lib/slurm", "/opt/slurm/lib64/slurm")


def normalise_pmi(names) -> Tuple[str, ...]:
    out = []
    for raw in names:
        n = raw.lower()
        if n.startswith("pmix"):
            out.append("pmix")
        elif n in ("pmi2", "cray_shasta"):   # Cray PMI speaks the PMI-2 wire protocol
            out.append("pmi2")
        elif n in ("pmi", "pmi1"):
            out.append("pmi1")
    return tuple(dict.fromkeys(out))


def probe_pmi(root: Root, sources: Dict[str, str], cache: ProbeCache) -> Optional[Tuple[str, ...]]:
    srun = root.which("srun")
    if srun:
        text = cache.get(f"srun-mpi-list|{srun}", [os.path.realpath(srun)],
                         lambda: root.run([srun, "--mpi=list"]) or "", is_text)
        names = _SRUN_MPI.findall(text)
        names = [n for n in names if n not in ("MPI", "none")]
        if names:
            sources["pmi"] = f"{srun} --mpi=list"
            return normalise_pmi(names)
    unreadable = []
    for d in SLURM_PLUGIN_DIRS:
        names = root.scan(d)
        if names is None:
            unreadable.append(root.path(d))
            continue
        plugins = [n[4:-3] for n in names if n.startswith("mpi_") and n.endswith(".so")]
        if plugins:
            sources["pmi"] = f"Slurm MPI plugins in {root.path(d)}"
            return normalise_pmi(plugins)
    if unreadable:
        sources["pmi"] = f"unknown: cannot list {', '.join(unreadable)}"
        return None
    sources["pmi"] = "no Slurm launcher found"
    return ()
