"""Pieces shared by the commands: getting the host profile the options describe."""
from __future__ import annotations

import os

import compat.host as host_mod
from compat.host.profile import Host


def host_from_args(args) -> Host:
    return host_and_features(args)[0]


def host_and_features(args):
    """(host, features): ``features`` is NFD's view of the host, or a callable building it on
    demand from the same files the host came from (only NFD rules need it)."""
    if getattr(args, "host", None):
        # start-up: NFD's feature model loads only for a --host file
        from compat.nfd.nodefeature import load_host_file
        return load_host_file(args.host, assume=args.assume)
    host = host_mod.detect(sysroot=args.sysroot, assume=args.assume,
                           probe_tools=getattr(args, "probe_tools", False))

    def features():
        # start-up: the sysroot reader and NFD's feature model load only when NFD artifacts are evaluated
        from compat.host.root import Root
        from compat.nfd.features import from_host
        return from_host(host, Root(args.sysroot or os.environ.get("COMPAT_SYSROOT") or None))
    return host, features
