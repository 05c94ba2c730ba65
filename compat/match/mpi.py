"""MPI: the launch model decides what must hold; without ``mpi.mode`` MPI only ranks.

* ``bind``: a host MPI of the same ABI whose version is at least the image's (versions are
  compared within one implementation; across an ABI family the ABI promise suffices);
* ``hybrid``: the host ``mpirun`` launches the image's MPI: same implementation, and for
  Open MPI the same major version; for the MPICH family the same ABI;
* ``pmi``: the site launcher (``srun --mpi=list``) offers one of the image's PMI flavours;
* ``none``: nothing.

Fit: 3 same implementation and version, 2 same implementation, 1 same ABI, 0 otherwise.
"""
from __future__ import annotations


from compat.host.profile import MPI, Host
from compat.match.check import Check, fail, ok, unknown
from compat.record import Record
from compat.vocab import values as V
from compat.vocab.values import mpi_abi_of as abi_of
from compat.vocab.annotations import Requirements

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional, Tuple


def _version_matches(image: Optional[str], host: Optional[str]) -> bool:
    """The host version starts with every component the image states (4.1 ~ 4.1.6)."""
    if not image or not host:
        return False
    i, h = V.version_tuple(image), V.version_tuple(host)
    return bool(i) and h[:len(i)] == i


def fit(req: Requirements, m: MPI) -> int:
    impl = req.get("mpi.implementation")
    abi = req.get("mpi.abi") or (abi_of(impl) if impl else None)
    if impl and m.implementation == impl:
        return 3 if _version_matches(req.get("mpi.version"), m.version) else 2
    if abi and m.abi == abi:
        return 1
    return 0


def _best(req: Requirements, mpis) -> Tuple[int, Optional[MPI]]:
    best, which = 0, None
    for m in mpis:
        f = fit(req, m)
        if f > best:
            best, which = f, m
    return best, which


def _label(m: MPI) -> str:
    return f"{m.implementation} {m.version or ''}".strip()


def check(req: Requirements, host: Host) -> Check:
    impl = req.get("mpi.implementation")
    mode = req.get("mpi.mode")
    if impl == "none" or mode == "none" or not any(k.startswith("mpi.") for k in req.values):
        return ok("mpi", "no MPI" if impl == "none" else "", (0,))
    w = _Wanted(impl, req.get("mpi.abi") or (abi_of(impl) if impl else None))
    if mode in _HOST_MPI_MODES:
        if host.mpi is None:
            return unknown("mpi", "mpi.implementation")
        if not host.mpi:
            return fail("mpi", f"{mode} mode needs a host MPI ({w.text(req)}); host has none")
    return _MODES[mode](req, host, w)


class _Wanted(Record):
    """The image's MPI: its implementation (if stated) and ABI family."""
    impl: Optional[str]
    abi: Optional[str]

    def text(self, req: Requirements) -> str:
        return f"{self.impl or self.abi or 'MPI'} {req.get('mpi.version') or ''}".strip()


def _ranks_only(req: Requirements, host: Host, w: _Wanted) -> Check:
    """No mpi.mode: the host's MPI only ranks."""
    if host.mpi is None:
        return ok("mpi", f"{w.text(req)} (host MPI unknown; ranks only)", (0,))
    best, m = _best(req, host.mpi)
    text = {3: "same MPI and version", 2: "same MPI", 1: "same ABI", 0: "no matching host MPI"}[best]
    return ok("mpi", f"{w.text(req)}: {text}" + (f" ({_label(m)})" if m else "") + "; ranks only", (best,))


def _pmi(req: Requirements, host: Host, w: _Wanted) -> Check:
    """The image brings its own MPI; the host launcher must offer one of its PMI flavours."""
    offered = host.pmi
    if offered is None:
        return unknown("mpi", "mpi.pmi")
    wanted = req.get("mpi.pmi")
    common = [p for p in wanted if p in offered]
    if not common:
        return fail("mpi", f"pmi mode needs {'/'.join(wanted)}; the host launcher offers "
                           f"{', '.join(offered) or 'none'}")
    best, _ = _best(req, host.mpi or ())
    return ok("mpi", f"pmi mode via {common[0]}", (best,))


def _bind(req: Requirements, host: Host, w: _Wanted) -> Check:
    """The host's MPI is bind-mounted in: same ABI, at least the image's version."""
    for m in host.mpi:
        if m.abi != w.abi:
            continue
        if w.impl and m.implementation == w.impl and req.get("mpi.version") and m.version and \
                V.version_tuple(m.version) < V.version_tuple(req.get("mpi.version")):
            continue
        note = ""
        glibc = req.get("libc.glibc")
        if glibc and host.os.glibc and V.version_tuple(glibc) < V.version_tuple(host.os.glibc):
            note = (f"host MPI was built against glibc {host.os.glibc}; the image has {glibc}: "
                    f"bind-mounted libraries may need newer symbols")
        return ok("mpi", f"bind host {_label(m)} (ABI {w.abi})", (fit(req, m),), note=note)
    have = ", ".join(f"{_label(m)} (ABI {m.abi})" for m in host.mpi)
    return fail("mpi", f"bind mode needs a host MPI of ABI {w.abi}"
                       + (f" >= {req.get('mpi.version')}" if req.get("mpi.version") else "")
                       + f"; host has {have}")


def _hybrid(req: Requirements, host: Host, w: _Wanted) -> Check:
    """The host's mpirun launches the image's MPI: Open MPI of the same major, else the same ABI."""
    openmpi = w.impl == "openmpi" or (w.impl is None and w.abi == "openmpi")
    for m in host.mpi:
        if openmpi:
            if m.implementation != "openmpi":
                continue
            iv, hv = V.version_tuple(req.get("mpi.version") or ""), V.version_tuple(m.version or "")
            if iv and hv and iv[0] != hv[0]:
                continue
            if iv and not hv:
                continue
        elif m.abi != w.abi:
            continue
        return ok("mpi", f"hybrid with host {_label(m)}", (fit(req, m),))
    have = ", ".join(_label(m) for m in host.mpi)
    rule = "Open MPI of the same major version" if (w.impl == "openmpi" or w.abi == "openmpi") \
        else f"an MPI of ABI {w.abi}"
    return fail("mpi", f"hybrid mode needs {rule} as the host mpirun ({w.text(req)}); host has {have}")


#: a matcher per launch model (mpi.mode); the modes that need a host MPI first
_MODES = {None: _ranks_only, "pmi": _pmi, "bind": _bind, "hybrid": _hybrid}
_HOST_MPI_MODES = ("bind", "hybrid")
