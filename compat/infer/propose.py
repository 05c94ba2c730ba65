"""From the evidence of an image's files to proposed annotations, each with its evidence.

* ``cpu.target``: the highest x86-64 level any binary's ``GNU_PROPERTY_X86_ISA_1_NEEDED``
  note demands beyond the baseline (a note that says only "baseline" usually comes from the
  C runtime objects, not the program, so it decides nothing); otherwise the ``-march``
  recorded by GCC (``-frecord-gcc-switches``, the DWARF producer string): ``x86-64-vN`` gives
  ``x86_64_vN``, a named CPU the archspec target GCC uses that name for; otherwise unknown,
  never a guess. Optional library variants under ``glibc-hwcaps/`` are not requirements.
* ``gpu.cuda.arch``: every SASS (``sm_XY``) and PTX (``compute_XY``) in any ``.nv_fatbin``;
  ``gpu.cuda.version``: the image's ``libcudart.so.X.Y``, else the toolkit release in the
  cubins, else the CUDA release of the newest PTX ISA.
* ``mpi.abi`` from ``DT_NEEDED`` (``libmpi.so.40`` Open MPI, ``libmpi.so.12``/``libmpich.so.12``
  MPICH ABI, ``libmpi_abi.so`` MPI-5 ABI); ``mpi.implementation``/``mpi.version`` from the MPI
  library shipped in the image (its version strings, its pkg-config file).
* ``fabric.providers``: libfabric provider plugins and the providers built into libfabric.so.
* ``libc.glibc``: the image's own glibc; the highest ``GLIBC_x.y`` any binary needs is
  reported as evidence (a floor the image's glibc must meet).
"""
from __future__ import annotations

from typing import Dict, List, NamedTuple, Optional

from compat.infer.fatbin import KIND_PTX, cuda_version
from compat.infer.scan import Finding


class Proposal(NamedTuple):
    key: str                 # without the org.hpc-compat. prefix
    value: str
    evidence: List[Dict]


def _vt(v: str):
    return tuple(int(x) for x in v.replace("-", ".").split(".") if x.isdigit())


def _march_target(march: str) -> Optional[str]:
    """GCC -march name -> archspec target (x86-64-v3 -> x86_64_v3, znver3 -> zen3)."""
    if march in ("x86-64", "x86_64"):
        return "x86_64"
    if march.startswith("x86-64-v"):
        return "x86_64_v" + march[-1]
    try:
        from archspec.cpu import TARGETS
    except ImportError:
        return None
    if march in TARGETS:
        return march
    for name, t in TARGETS.items():
        for entry in (t.compilers.get("gcc") or []):
            if "-march={name}" in entry.get("flags", "") and entry.get("name") == march:
                return name
    return None


def _depth(target: str) -> int:
    from archspec.cpu import TARGETS
    t = TARGETS.get(target)
    return len(t.ancestors) + 1 if t is not None else 0


def propose(files: Dict[str, List[Finding]]) -> Dict[str, object]:
    """{"proposals": [Proposal], "unknown": {key: why}, "notes": [str]}"""
    findings = [f for fs in files.values() for f in fs]
    by_kind: Dict[str, List[Finding]] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    out: List[Proposal] = []
    unknown: Dict[str, str] = {}
    notes: List[str] = []

    # CPU
    isa = [f for f in by_kind.get("isa_level", []) if "/glibc-hwcaps/" not in f.path]
    strong = [f for f in isa if f.value > 1]
    marches = [f for f in by_kind.get("march", []) if "/glibc-hwcaps/" not in f.path]
    if strong:
        level = max(f.value for f in strong)
        out.append(Proposal("cpu.target", f"x86_64_v{level}",
                            [dict(f.evidence(), value=f"x86-64-v{f.value}") for f in strong if f.value == level]))
    elif marches:
        targets = [(t, f) for f in marches for t in [_march_target(f.value)] if t]
        if targets:
            best = max(targets, key=lambda tf: _depth(tf[0]))[0]
            out.append(Proposal("cpu.target", best,
                                [dict(f.evidence(), value=f"-march={f.value}") for t, f in targets if t == best]))
        else:
            unknown["cpu.target"] = "-march values archspec does not know: " + \
                ", ".join(sorted({f.value for f in marches}))
    else:
        unknown["cpu.target"] = ("no binary carries an x86 ISA level beyond baseline nor a recorded -march"
                                 if isa or findings else "no ELF binary in scope")

    # CUDA
    fb = by_kind.get("fatbin", [])
    if fb:
        arches = sorted({f.value.arch for f in fb}, key=lambda a: (a.split("_")[0] != "sm", int(a.split("_")[1]), a))
        out.append(Proposal("gpu.cuda.arch", ",".join(arches), [f.evidence() for f in fb]))
    cudart = by_kind.get("cudart", [])
    cver = None
    if cudart:
        best = max(cudart, key=lambda f: _vt(f.value))
        parts = best.value.split(".")
        if len(parts) >= 2:
            cver, ev = f"{parts[0]}.{parts[1]}", [best.evidence()]
    if cver is None and fb:
        cver = cuda_version([f.value for f in fb])
        ev = [f.evidence() for f in fb if (f.value.toolkit or f.value.kind == KIND_PTX)]
    if cver:
        out.append(Proposal("gpu.cuda.version", cver, ev))
    elif fb:
        unknown["gpu.cuda.version"] = "compressed cubins and no PTX, no libcudart.so.X.Y in scope"

    # MPI
    abis = {"libmpi.so.40": "openmpi", "libmpi.so.12": "mpich", "libmpich.so.12": "mpich",
            "libmpi_cray.so.12": "mpich", "libmpi_abi.so": "mpi-abi", "libmpi_abi.so.0": "mpi-abi"}
    needs = [f for f in by_kind.get("needed", []) if f.value in abis]
    libs = by_kind.get("mpi_lib", [])
    lib_paths = {f.path for f in libs}
    users = [f for f in needs if f.path not in lib_paths]
    if users:
        found = sorted({abis[f.value] for f in users})
        if len(found) > 1:
            notes.append(f"binaries link more than one MPI ABI: {', '.join(found)}")
        out.append(Proposal("mpi.abi", found[0], [f.evidence() for f in users if abis[f.value] == found[0]]))
        lib = next((f for f in libs if f.value[0] == found[0] and f.value[1]), None)
        pcs = [f for f in by_kind.get("pc", [])]
        if lib is not None:
            out.append(Proposal("mpi.implementation", lib.value[1], [lib.evidence()]))
            version = lib.value[2]
            pc = next((f for f in pcs if f.value[0] in ("ompi", "mpich", "impi", "mvapich2", "cray-mpich")), None)
            if version:
                out.append(Proposal("mpi.version", version, [lib.evidence()]))
            elif pc is not None:
                out.append(Proposal("mpi.version", pc.value[1], [pc.evidence()]))
        elif found[0] == "openmpi":
            unknown["mpi.version"] = "the image links libmpi.so.40 but ships no Open MPI library (bind mode?)"
        else:
            unknown["mpi.implementation"] = f"the image links the {found[0]} ABI but ships no MPI library " \
                                            "to tell which implementation"

    # libfabric
    provs = by_kind.get("fabric_provider", [])
    if provs:
        names = sorted({f.value for f in provs})
        out.append(Proposal("fabric.providers", ",".join(names), [f.evidence() for f in provs]))

    # glibc
    own = by_kind.get("glibc_own", [])
    need = by_kind.get("glibc_need", [])
    if own:
        best = max(own, key=lambda f: _vt(f.value))
        ev = [best.evidence()]
        if need:
            top = max(need, key=lambda f: _vt(f.value))
            ev.append(dict(top.evidence(), value=f"needs GLIBC_{top.value} (highest of any binary)"))
            if _vt(top.value) > _vt(best.value):
                notes.append(f"{top.path} needs GLIBC_{top.value}, newer than the image's glibc {best.value}")
        out.append(Proposal("libc.glibc", best.value, ev))
    elif need:
        top = max(need, key=lambda f: _vt(f.value))
        unknown["libc.glibc"] = f"no libc.so.6 in scope; binaries need at least GLIBC_{top.value} ({top.path})"
    for f in by_kind.get("unreadable", []) + by_kind.get("skipped", []):
        notes.append(f"{f.path}: {f.value}")
    return {"proposals": out, "unknown": unknown, "notes": notes}
