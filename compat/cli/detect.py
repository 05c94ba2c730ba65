"""``compat detect``: the host profile, as a summary a person reads or as JSON."""
from __future__ import annotations

import json
import sys

from compat.cli.common import host_from_args
from compat.errors import printable
from compat.host.profile import Host


def _v(x, unknown="unknown"):
    return unknown if x is None or x == "" else str(x)


def summary(h: Host) -> str:
    lines = []
    o, c = h.os, h.cpu
    plat = f"{o.name}/{_v(o.arch)}" + (f"/{o.variant}" if o.variant else "")
    lines.append(f"platform   {plat}")
    lines.append(f"os         {_v(o.distro_name or o.distro)}, kernel {_v(o.kernel)}, glibc {_v(o.glibc)}"
                 + (f", inside {o.container}" if o.container else ""))
    level = f", x86-64-v{c.x86_64_level}" if c.x86_64_level else ""
    glv = f" (glibc: v{c.glibc_level})" if c.glibc_level and c.glibc_level != c.x86_64_level else ""
    lines.append(f"cpu        {_v(c.target)} ({_v(c.vendor)}, generic {_v(c.generic)}{level}{glv})"
                 + (f" - {c.model}" if c.model else ""))
    if h.gpus is None:
        lines.append("gpus       unknown")
    elif not h.gpus:
        lines.append("gpus       none")
    for g in h.gpus or ():
        what = f"cc {g.cc}" if g.cc else (g.gfx or "arch unknown")
        extra = ", ".join(x for x in (g.driver and f"driver {g.driver}", g.cuda and f"CUDA {g.cuda}",
                                      g.rocm and f"ROCm {g.rocm}", g.memory_mib and f"{g.memory_mib} MiB",
                                      g.mig and "MIG on") if x)
        lines.append(f"gpu {g.index:<6} {g.vendor} {_v(g.model, 'model unknown')}, {what}"
                     + (f", {extra}" if extra else ""))
    if h.fabrics is None:
        lines.append("fabric     unknown")
    elif not h.fabrics:
        lines.append("fabric     tcp only")
    for f in h.fabrics or ():
        lines.append(f"fabric     {f.type} {_v(f.device, '')} ({', '.join(x for x in (f.driver, f.state, f.rate) if x)})")
    if h.libfabric:
        lines.append(f"libfabric  {_v(h.libfabric.version)}: {', '.join(h.libfabric.providers) or 'no providers'}")
    if h.ucx:
        lines.append(f"ucx        {_v(h.ucx.version)}: {', '.join(h.ucx.transports) or 'no transports'}")
    if h.mpi is None:
        lines.append("mpi        unknown")
    elif not h.mpi:
        lines.append("mpi        none")
    for m in h.mpi or ():
        where = m.launcher or m.library or ""
        lines.append(f"mpi        {m.implementation} {_v(m.version)} (ABI {_v(m.abi)}) {where}".rstrip())
    lines.append(f"pmi        {', '.join(h.pmi) if h.pmi else ('unknown' if h.pmi is None else 'none')}")
    lines += _runtime_lines(h)
    lines.append("sources")
    for k, v in sorted(h.sources.items()):
        lines.append(f"  {k:<22} {v}")
    return "\n".join(lines)


def _yes(x) -> str:
    return "unknown" if x is None else ("yes" if x else "no")


def _runtime_lines(h: Host) -> list:
    """One line per runtime (version, where, and Apptainer/Singularity's setuid facts), then
    what unprivileged runtimes depend on."""
    lines = []
    if h.runtimes is not None and not h.runtimes:
        lines.append("runtime    none")
    for r in h.runtimes or ():
        facts = [r.path or ""]
        if r.setuid is not None or r.allow_setuid is not None or r.max_loop_devices is not None:
            facts += [f"setuid starter {_yes(r.setuid)}", f"allow setuid {_yes(r.allow_setuid)}",
                      f"allow kernel squashfs {_yes(r.allow_kernel_squashfs)}",
                      f"max loop devices {_v(r.max_loop_devices)}"]
        facts = [f for f in facts if f]
        lines.append(f"runtime    {r.name} {_v(r.version, 'version unknown')}" + (f" ({', '.join(facts)})" if facts else ""))
    x = h.rootless
    if x is not None:
        userns = _yes(x.userns) + (f" (max {x.max_user_namespaces})" if x.max_user_namespaces else "") + \
            (", restricted by AppArmor" if x.apparmor_restrict_userns else "")
        helpers = ", ".join(x.fuse_helpers) if x.fuse_helpers else ("none" if x.fuse_helpers is not None else "unknown")
        lines.append(f"rootless   user namespaces {userns}; {_v(x.user, 'user unknown')}: subuid {_yes(x.subuid)}, "
                     f"subgid {_yes(x.subgid)}; /dev/fuse {_yes(x.fuse)}, helpers {helpers}; "
                     f"unprivileged overlay {_yes(x.overlay)}")
    return lines


def run(args) -> int:
    h = host_from_args(args)
    if args.format == "nfd-features":
        # start-up: NFD's feature model loads only for --format nfd-features
        from compat.nfd.features import local_feature_file
        sys.stdout.write(local_feature_file(h))
        return 0
    if args.format == "slurm-features":
        from compat.plan.features import slurm_features   # start-up: detect loads no plan code otherwise
        sys.stdout.write(",".join(slurm_features(h)) + "\n")
        return 0
    if args.json or args.format == "json":
        json.dump(h.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        # facts read below a sysroot are not ours either
        print("\n".join(printable(line, 1000) for line in summary(h).split("\n")))
    return 0
