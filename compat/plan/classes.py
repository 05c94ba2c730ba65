"""Node classes: nodes whose profiles are equal on every fact matching reads.

``class_key(host)`` is the host with what no matcher reads blanked: ``sources`` (where a
fact came from), the MPI launcher and library paths, GPU memory and MIG mode, a fabric's
link state, rate and link layer, the container compat ran in, and the path of each runtime
found. The runtimes (their order, names, versions, setuid and configuration facts) and the
rootless facts stay: compat/match/runtime.py judges each class with its own first runtime.
Two hosts with equal keys get the same ranking from every image (spec/plan.md, "Classes").
"""
from __future__ import annotations


from compat.host.profile import Host

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Hashable


def class_key(host: Host) -> Hashable:
    """A hashable value equal for two hosts exactly when matching cannot tell them apart."""
    gpus = None if host.gpus is None else tuple(g._replace(memory_mib=None, mig=None) for g in host.gpus)
    fabrics = None if host.fabrics is None else \
        tuple(f._replace(state=None, rate=None, link_layer=None) for f in host.fabrics)
    mpi = None if host.mpi is None else tuple(m._replace(launcher=None, library=None) for m in host.mpi)
    runtimes = None if host.runtimes is None else tuple(r._replace(path=None) for r in host.runtimes)
    return host._replace(os=host.os._replace(container=None), gpus=gpus, fabrics=fabrics, mpi=mpi,
                         runtimes=runtimes, sources=())
