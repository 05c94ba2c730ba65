"""Fabric: the host has one of the image's fabrics (``tcp`` always), and providers native to
a host fabric rank above TCP.

Fit: 2 the image drives a host high-speed fabric natively (a listed fabric, or a libfabric
provider native to one: ``compat/data/fabrics.json``); 1 TCP only; 0 nothing stated.
"""
from __future__ import annotations

from compat.host.profile import Host
from compat.match.check import Check, fail, ok, unknown
from compat.vocab.annotations import Requirements
from compat.vocab.data import load as load_data


def check(req: Requirements, host: Host) -> Check:
    fabrics = req.get("fabric")
    providers = req.get("fabric.providers")
    if not fabrics and not providers:
        return ok("fabric", "", (0,))
    host_types = host.fabric_types()
    table = load_data("fabrics")["fabrics"]
    if fabrics:
        if host_types is None and "tcp" not in fabrics:
            return unknown("fabric", "fabric")
        usable = [f for f in fabrics if f == "tcp" or f in (host_types or ())]
        if not usable:
            return fail("fabric", f"needs {' or '.join(fabrics)}; host has "
                                  f"{', '.join(host_types) if host_types else 'tcp only'}")
    native_fabric = [f for f in (fabrics or ()) if f != "tcp" and f in (host_types or ())]
    native_prov = [(p, f) for p in (providers or ()) for f in (host_types or ())
                   if p in table.get(f, {}).get("providers", [])]
    if native_prov:
        return ok("fabric", f"native {native_prov[0][0]} provider on {native_prov[0][1]}", (2,))
    if native_fabric:
        return ok("fabric", f"built for {native_fabric[0]}", (2,))
    return ok("fabric", "tcp" + ("" if host_types is not None else " (host fabric unknown)"), (1,))
