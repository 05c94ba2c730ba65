"""Pieces shared by the commands: getting the host profile the options describe."""
from __future__ import annotations

from compat.host.profile import Host


def host_from_args(args) -> Host:
    import compat.host as host_mod

    if getattr(args, "host", None):
        return host_mod.load(args.host, assume=args.assume)
    return host_mod.detect(sysroot=args.sysroot, assume=args.assume,
                           probe_tools=getattr(args, "probe_tools", False))
