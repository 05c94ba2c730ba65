"""Kernel: the host kernel release satisfies the image's PEP 440 specifier."""
from __future__ import annotations

from compat.host.profile import Host
from compat.match.check import Check, fail, ok, unknown
from compat.vocab import values as V
from compat.vocab.annotations import Requirements


def check(req: Requirements, host: Host) -> Check:
    if "os.kernel" not in req:
        return ok("kernel", "")
    spec = req.get("os.kernel")                  # normalised by V.version_range
    version = V.kernel_version(host.os.kernel or "")
    if version is None:
        return unknown("kernel", "os.kernel")
    if V.in_range(version, spec):
        return ok("kernel", f"kernel {version} {spec}")
    return fail("kernel", f"needs kernel {spec}; host runs {host.os.kernel}")
