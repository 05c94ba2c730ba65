"""From the evidence of an image's files to proposed annotations, each with its evidence.

* ``cpu.target``: the highest x86-64 level any binary's ``GNU_PROPERTY_X86_ISA_1_NEEDED``
  note demands beyond the baseline (a note that says only "baseline" usually comes from the
  C runtime objects, not the program, so it decides nothing); otherwise the ``-march``
  recorded by GCC (``-frecord-gcc-switches``, the DWARF producer string): ``x86-64-vN`` gives
  ``x86_64_vN``, a named CPU the archspec target GCC uses that name for; otherwise unknown,
  never a guess. Optional library variants under ``glibc-hwcaps/`` are not requirements.
* ``gpu.cuda.arch``: every SASS (``sm_XY``) and PTX (``compute_XY``) in any ``.nv_fatbin``,
  with its ``a``/``f`` suffix; ``gpu.cuda.version``: the image's CUDA runtime (the name of
  ``libcudart.so.X.Y``, or the constant a lone ``libcudart.so.X`` returns), else the toolkit
  release in the cubins, else the CUDA release of the newest PTX ISA (``compat/data/cuda.json``).
* ``mpi.abi`` from the ``DT_NEEDED`` of the image's executables (the sonames of
  ``compat/data/mpi.json``); executables that link different ABIs leave it unknown, naming
  both; ``mpi.implementation``/``mpi.version`` from the MPI library shipped in the image (its
  version strings, its pkg-config file).
* ``fabric.providers``: libfabric provider plugins and the providers built into libfabric.so.
* ``libc.glibc``: the image's own glibc; the highest ``GLIBC_x.y`` any binary needs is
  reported as evidence (a floor the image's glibc must meet).
"""
from __future__ import annotations


from archspec.cpu import TARGETS

from compat.errors import printable
from compat.infer.analyse import Finding
from compat.record import Record
from compat.vocab.data import mpi_sonames
from compat.infer.fatbin import KIND_PTX, cuda_version

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional


class Proposal(Record):
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
    if march in TARGETS:
        return march
    for name, t in TARGETS.items():
        for entry in (t.compilers.get("gcc") or []):
            if "-march={name}" in entry.get("flags", "") and entry.get("name") == march:
                return name
    return None


def _depth(target: str) -> int:
    t = TARGETS.get(target)
    return len(t.ancestors) + 1 if t is not None else 0


class _Draft(Record):
    """What the proposers write: proposals, keys left unknown (with why), notes."""
    out: List[Proposal]
    unknown: Dict[str, str]
    notes: List[str]
    any_finding: bool


def propose(files: Dict[str, List[Finding]]) -> Dict[str, object]:
    """{"proposals": [Proposal], "unknown": {key: why}, "notes": [str]}"""
    findings = [f for fs in files.values() for f in fs]
    by_kind: Dict[str, List[Finding]] = {}
    for f in findings:
        by_kind.setdefault(f.kind, []).append(f)
    d = _Draft([], {}, [], bool(findings))
    for proposer in _PROPOSERS:
        proposer(by_kind, d)
    for f in by_kind.get("damaged", []):
        d.notes.append(f"{f.path}: damaged ({f.value}); what the rest of the file says is kept")
    for f in by_kind.get("skipped", []):
        d.notes.append(f"{f.path}: skipped ({f.value})")
    unknown = {key: printable(why, 2000) for key, why in d.unknown.items()}
    return {"proposals": d.out, "unknown": unknown, "notes": [printable(n, 2000) for n in d.notes]}


def _propose_cpu(by_kind, d: _Draft) -> None:
    """cpu.target: the highest x86-64 ISA level a binary needs, else the deepest -march archspec knows."""
    isa = [f for f in by_kind.get("isa_level", []) if "/glibc-hwcaps/" not in f.path]
    strong = [f for f in isa if f.value > 1]
    marches = [f for f in by_kind.get("march", []) if "/glibc-hwcaps/" not in f.path]
    if strong:
        level = max(f.value for f in strong)
        d.out.append(Proposal("cpu.target", f"x86_64_v{level}",
                              [dict(f.evidence(), value=f"x86-64-v{f.value}") for f in strong if f.value == level]))
    elif marches:
        targets = [(t, f) for f in marches for t in [_march_target(f.value)] if t]
        if targets:
            best = max(targets, key=lambda tf: _depth(tf[0]))[0]
            d.out.append(Proposal("cpu.target", best,
                                  [dict(f.evidence(), value=f"-march={f.value}") for t, f in targets if t == best]))
        else:
            d.unknown["cpu.target"] = "-march values archspec does not know: " + \
                ", ".join(sorted({f.value for f in marches}))
    else:
        d.unknown["cpu.target"] = ("no binary carries an x86 ISA level beyond baseline nor a recorded -march"
                                   if isa or d.any_finding else "no ELF binary in scope")


def _propose_fabric(by_kind, d: _Draft) -> None:
    """fabric.providers: every libfabric provider a binary registers."""
    provs = by_kind.get("fabric_provider", [])
    if provs:
        names = sorted({f.value for f in provs})
        d.out.append(Proposal("fabric.providers", ",".join(names), _evidence(provs)))


def _propose_glibc(by_kind, d: _Draft) -> None:
    """libc.glibc: the image's own glibc (noting a binary that needs a newer one)."""
    own = by_kind.get("glibc_own", [])
    need = by_kind.get("glibc_need", [])
    if own:
        best = max(own, key=lambda f: _vt(f.value))
        ev = [best.evidence()]
        if need:
            top = max(need, key=lambda f: _vt(f.value))
            ev.append(dict(top.evidence(), value=f"needs GLIBC_{top.value} (highest of any binary)"))
            if _vt(top.value) > _vt(best.value):
                d.notes.append(f"{top.path} needs GLIBC_{top.value}, newer than the image's glibc {best.value}")
        d.out.append(Proposal("libc.glibc", best.value, ev))
    elif need:
        top = max(need, key=lambda f: _vt(f.value))
        d.unknown["libc.glibc"] = f"no libc.so.6 in scope; binaries need at least GLIBC_{top.value} ({top.path})"


def _evidence(findings) -> List[Dict]:
    """The evidence of these findings, each line once (a fat binary may hold several entries
    for one target, e.g. a cubin and its copy for another toolkit)."""
    out, seen = [], set()
    for f in findings:
        ev = f.evidence()
        key = tuple(sorted((k, str(v)) for k, v in ev.items()))
        if key not in seen:
            seen.add(key)
            out.append(ev)
    return out


def _arch_key(arch: str):
    kind, _, rest = arch.partition("_")
    digits = rest.rstrip("af")
    return (kind != "sm", int(digits) if digits.isdigit() else 0, arch)


def _propose_cuda(by_kind, d: _Draft) -> None:
    """gpu.cuda.arch from every fat-binary entry (with its a/f suffix); gpu.cuda.version from
    the CUDA runtime the image ships, else the cubins' toolkit note, else the newest PTX ISA."""
    out, unknown = d.out, d.unknown
    fb = by_kind.get("fatbin", [])
    if fb:
        arches = sorted({f.value.arch for f in fb}, key=_arch_key)
        out.append(Proposal("gpu.cuda.arch", ",".join(arches), _evidence(fb)))
    cudart = by_kind.get("cudart", [])
    if cudart:
        best = max(cudart, key=lambda f: _vt(f.value))
        major, minor = best.value.split(".")[:2]
        out.append(Proposal("gpu.cuda.version", f"{major}.{minor}", [best.evidence()]))
        return
    if fb:
        cver, why = cuda_version([f.value for f in fb])
        if cver:
            ev = _evidence(f for f in fb if (f.value.toolkit or f.value.kind == KIND_PTX))
            out.append(Proposal("gpu.cuda.version", cver, ev))
            return
        unknown["gpu.cuda.version"] = why + ", and no libcudart.so.X.Y in scope"
    majors = by_kind.get("cudart_major", [])
    if majors and "gpu.cuda.version" not in unknown:
        f = majors[0]
        unknown["gpu.cuda.version"] = f"{f.path} is CUDA {f.value}; the minor version could not be read"


def _propose_mpi(by_kind, d: _Draft) -> None:
    """mpi.abi from what the image's executables link (DT_NEEDED); when executables link
    different ABIs the key stays unknown, naming both. Libraries decide only when no
    executable links an MPI. Implementation and version from the shipped MPI library."""
    out, unknown = d.out, d.unknown
    abis = mpi_sonames()
    libs = by_kind.get("mpi_lib", [])
    lib_paths = {f.path for f in libs}
    programs = {f.path for f in by_kind.get("executable", [])}
    needs = [f for f in by_kind.get("needed", []) if f.value in abis and f.path not in lib_paths]
    users = [f for f in needs if f.path in programs] or needs
    if not users:
        return
    found = sorted({abis[f.value] for f in users})
    if len(found) > 1:
        first = {abi: next(f for f in users if abis[f.value] == abi) for abi in found}
        unknown["mpi.abi"] = "the image's " + ("executables" if users[0].path in programs else "libraries") + \
            " link different MPI ABIs: " + "; ".join(f"{f.path} links {f.value} ({abi})" for abi, f in first.items())
        return
    abi = found[0]
    out.append(Proposal("mpi.abi", abi, _evidence(users)))
    lib = next((f for f in libs if f.value[0] == abi and f.value[1]), None)
    if lib is not None:
        out.append(Proposal("mpi.implementation", lib.value[1], [lib.evidence()]))
        pc = next((f for f in by_kind.get("pc", []) if f.value[0] in ("ompi", "mpich", "impi", "mvapich2", "cray-mpich")),
                  None)
        if lib.value[2]:
            out.append(Proposal("mpi.version", lib.value[2], [lib.evidence()]))
        elif pc is not None:
            out.append(Proposal("mpi.version", pc.value[1], [pc.evidence()]))
    elif abi == "openmpi":
        unknown["mpi.version"] = "the image links libmpi.so.40 but ships no Open MPI library (bind mode?)"
    else:
        unknown["mpi.implementation"] = f"the image links the {abi} ABI but ships no MPI library " \
                                        "to tell which implementation"


#: a proposer per key (family), in the order proposals are listed
_PROPOSERS = (_propose_cpu, _propose_cuda, _propose_mpi, _propose_fabric, _propose_glibc)
