"""CPU: archspec target (``target <= host``), features, vendor; and how specific the
image's CPU build is (more archspec ancestors = nearer the host)."""
from __future__ import annotations


from compat.host.profile import CPU, Host
from compat.match.check import Check, fail, ok, unknown
from compat.match.platform import Platform, ladder, rung
from compat.vocab.annotations import Requirements
from compat.vocab.targets import targets

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional


def depth(target_name: Optional[str]) -> int:
    """1 + number of archspec ancestors; 0 for an unknown or absent target."""
    t = targets().get(target_name) if target_name else None
    return t.depth if t is not None else 0


def variant_target(arch: str, variant: str) -> Optional[str]:
    """The archspec target an OCI variant stands for: amd64 ``v3`` -> ``x86_64_v3``; arm64
    ``v8.2`` -> ``armv8.2a``. A level archspec does not know (``v8.7``, ``v9.6``) stands for the
    highest one it knows below it on the platform's own ladder (``armv8.6a``, ``armv9.2a``)."""
    if arch not in ("amd64", "arm64"):
        return None
    known = targets().by_name
    for step in ladder(Platform("linux", arch, variant or "")):
        name = level_name(arch, step)
        if name in known:
            return name
    return None


def level_name(arch: str, variant: str) -> Optional[str]:
    """The architecture level a variant names, in archspec's spelling (known to it or not)."""
    if arch == "amd64":
        return f"x86_64_{variant}" if variant and variant != "v1" else "x86_64"
    if arch == "arm64":
        if not variant:
            return "aarch64"
        v = variant[1:]
        return f"armv{v if '.' in v else v + '.0'}a"
    return None


def seen_through(cpu: CPU, own, requested) -> CPU:
    """The host CPU seen through a requested platform (``--platform``): the host's own
    platform leaves it as it is; a lower level of the same architecture bounds it to that
    level's generic target (a requested ``v2`` makes a Zen 4 an ``x86_64_v2``); any other
    platform describes another machine, known only by its level (vendor unknown)."""
    # start-up: the CPU probe loads only when an assumed target is seen through
    from compat.host.assume import cpu_from_target

    if (requested.arch, requested.variant) == (own.arch, own.variant):
        return cpu
    target = variant_target(requested.arch, requested.variant)
    if target is None:
        return CPU()
    seen = cpu_from_target(target)
    bounded = requested.arch == own.arch and rung(requested, own) is not None
    return seen._replace(vendor=cpu.vendor if bounded else None, model=cpu.model if bounded else None)


def with_variant(check: Check, arch: str, variant: str, host: Host) -> Check:
    """The CPU verdict with the platform variant counted as the CPU requirement it is
    (``x86_64_v3 (platform variant) <= zen4``); fit: the larger archspec depth."""
    if not check.ok or not variant:
        return check
    right = host.cpu.target or host.os.arch
    if arch == "arm64" and host.os.arch == "arm64" and host.os.variant:
        right = level_name(arch, host.os.variant)   # the platform's ladder goes past archspec's armv9.2a
    said = f"{level_name(arch, variant)} (platform variant) <= {right}"
    reason = said if check.reason == "no CPU requirement" else f"{check.reason}, {said}"
    return check._replace(reason=reason, fit=(max(check.fit[0], depth(variant_target(arch, variant))),))


def check(req: Requirements, host: Host) -> Check:
    reasons = []
    spec = 0
    c = host.cpu
    if "cpu.vendor" in req:
        want = req.get("cpu.vendor")
        if c.vendor is None:
            return unknown("cpu", "cpu.vendor")
        if c.vendor.lower() != want.lower():
            return fail("cpu", f"needs a {want} CPU; host is {c.vendor}")
        reasons.append(want)
    if "cpu.target" in req:
        table = targets()
        name = req.get("cpu.target")
        t = table.get(name)
        if t is None:
            return fail("cpu", f"{name!r} is not a microarchitecture this archspec knows "
                               f"(built with a newer archspec?)")
        if c.target is None:
            return unknown("cpu", "cpu.target")
        h = table.get(c.target)
        if h is None:
            return unknown("cpu", "cpu.target", f"host target {c.target!r} unknown to archspec")
        if t.family != h.family:
            return fail("cpu", f"needs {name} ({t.family}); host is {c.target} ({h.family})")
        if not table.runs_on(t, h):
            missing = sorted(t.features - set(c.features or h.features))
            why = f"missing {', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}" if missing \
                else f"{name} is not an ancestor of {c.target}"
            if t.vendor not in ("generic", c.vendor):
                why = f"{name} targets {t.vendor} CPUs, host CPU is {c.vendor}"
            return fail("cpu", f"needs {name}; host is {c.target} ({why})")
        spec = depth(name)
        reasons.append(f"{name} <= {c.target}")
    if "cpu.features" in req:
        if c.features is None:
            return unknown("cpu", "cpu.features")
        # archspec's partial microarchitecture of the host's flags: its own family, ""
        table, flags = targets(), set(c.features)
        missing = [f for f in req.get("cpu.features") if not table.has_feature(flags, "", f)]
        if missing:
            return fail("cpu", f"needs {', '.join(missing)}; host CPU ({c.target}) lacks them")
        reasons.append("+".join(req.get("cpu.features")))
    return ok("cpu", ", ".join(reasons) or "no CPU requirement", (spec,))
