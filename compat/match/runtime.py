"""Runtime: the container runtime that will run the image is one the image names, in a version
it accepts, and can do on this host what the image needs (``runtime``, ``runtime.needs``); a
SIF artifact runs only with a runtime that runs SIF (spec/selection.md, "Runtime").

The runtime that will run the image is the host's first (``Host.runtimes`` order: the first
found); :func:`running` puts the one ``--runtime`` (or the ``--format``) names first, as
``--platform`` replaces the host's platform. Capabilities, from the host's facts:

* ``userns``: unprivileged user namespaces (``Host.rootless.userns``);
* ``fakeroot``: user namespaces and the user's ranges in ``/etc/subuid`` and ``/etc/subgid``
  (Apptainer's fakeroot with the full ID mapping; its root-mapped fallback without the ranges
  is not counted: installing packages as fake root then fails);
* ``fuse``: ``/dev/fuse`` usable and the FUSE helpers the runtime mounts with found
  (``compat/data/runtimes.json`` ``fuse``: squashfuse_ll or squashfuse for Apptainer and
  SingularityCE, squashfuse and fuse-overlayfs for Enroot, fuse-overlayfs for Podman); helpers
  nobody looked for (a profile that states only ``fuse``) leave the device to decide;
* ``setuid``: the runtime's setuid starter is installed setuid root and its configuration
  allows it (``allow setuid`` in apptainer.conf / singularity.conf).

A fact nobody could detect gives ``unknown: <fact>`` (state it with ``--assume``). No fit: the
dimension only filters.
"""
from __future__ import annotations


from compat.errors import BadInput, ValueProblem
from compat.host.profile import Host, Rootless, Runtime
from compat.match.check import Check, fail, ok, unknown
from compat.vocab import values as V
from compat.vocab.annotations import Requirements
from compat.vocab.data import runtimes as runtime_table

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Callable, Dict, Optional, Tuple

_ANY = ok("runtime", "")
_NAME_IT = "name it with --runtime NAME, or --format apptainer|podman|enroot"


def name_of(text: str, where: str = "--runtime") -> str:
    """A runtime's name from ``--runtime`` / the API (aliases read), or BadInput saying which exist."""
    try:
        return V.runtime_name(text, where)
    except ValueProblem as exc:
        raise BadInput(str(exc)) from None


def for_format(fmt: Optional[str]) -> Optional[str]:
    """The runtime a ``--format`` names (the first in compat/data/runtimes.json whose
    ``formats`` lists it): apptainer -> apptainer, podman -> podman, enroot -> enroot; None
    for ref, digest, json."""
    for name, info in runtime_table().items():
        if fmt in info.get("formats", ()):
            return name
    return None


def running(host: Host, name: Optional[str] = None) -> Host:
    """The host as ``name``'s runtime sees it: that runtime first in ``host.runtimes`` (with
    what was detected of it; unknown version and facts when it was not found). None: the host
    as it is, its first runtime running the image."""
    if name is None:
        return host
    name = name_of(name)
    found = tuple(host.runtimes or ())
    first = next((r for r in found if r.name == name), Runtime(name=name))
    return host._replace(runtimes=(first,) + tuple(r for r in found if r is not first))


def current(host: Host) -> Optional[Runtime]:
    """The runtime that will run the image (None: none found, none named)."""
    return host.runtimes[0] if host.runtimes else None


def check(req: Requirements, host: Host) -> Check:
    wanted = req.get("runtime")
    needs = req.get("runtime.needs")
    if not wanted and not needs:
        return _ANY
    rt = current(host)
    if rt is None:
        return unknown("runtime", "runtime", _NAME_IT)
    reasons = []
    if wanted:
        c = _listed(wanted, rt)
        if not c.ok:
            return c
        reasons.append(c.reason)
    for need in needs or ():
        c = NEEDS[need](rt, host.rootless or Rootless())
        if not c.ok:
            return c
        reasons.append(c.reason)
    return ok("runtime", "; ".join(reasons))


def for_sif(c: Check, host: Host) -> Check:
    """``c`` (the keys' verdict) for a SIF artifact: the runtime must run SIF. (Every runtime
    runs OCI images: compat/data/runtimes.json ``runs``, checked by the tests.)"""
    rt = current(host)
    if rt is None:
        return unknown("runtime", "runtime", f"a SIF runs with {_sif_runtimes()}: {_NAME_IT}")
    if "sif" not in runtime_table().get(rt.name, {}).get("runs", ()):
        return fail("runtime", f"a SIF runs with {_sif_runtimes()}; the image would run with {rt.name}")
    if not c.ok:
        return c
    return c._replace(reason="; ".join(r for r in (f"{rt.name} runs the SIF", c.reason) if r))


def _sif_runtimes() -> str:
    return " or ".join(name for name, info in runtime_table().items() if "sif" in info["runs"])


# -- the runtime and its version ------------------------------------------------------------

def _listed(wanted: Tuple[Tuple[str, str], ...], rt: Runtime) -> Check:
    ranges = [spec for name, spec in wanted if name == rt.name]
    if not ranges:
        names = " or ".join(dict.fromkeys(name + spec for name, spec in wanted))
        return fail("runtime", f"runs with {names}; the image would run with {rt.name}")
    if "" in ranges:
        return ok("runtime", f"runs with {rt.name}")
    version = V.kernel_version(rt.version or "")       # the leading X.Y.Z PEP 440 compares
    if version is None:
        return unknown("runtime", "runtime.version", f"state it with --assume runtime={rt.name}@X.Y")
    for spec in ranges:
        if V.in_range(version, spec):
            return ok("runtime", f"{rt.name} {version} {spec}")
    return fail("runtime", f"needs {' or '.join(rt.name + s for s in ranges)}; host has {rt.name} {rt.version}")


# -- capabilities -----------------------------------------------------------------------------

def _userns(rt: Runtime, r: Rootless) -> Check:
    if r.userns is None:
        return unknown("runtime", "userns")
    if r.userns:
        return ok("runtime", "user namespaces")
    return fail("runtime", f"needs unprivileged user namespaces; {_why_no_userns(r)}")


def _why_no_userns(r: Rootless) -> str:
    if r.max_user_namespaces == 0:
        return "the host forbids them (user.max_user_namespaces = 0)"
    if r.unprivileged_userns_clone is False:
        return "the host forbids them (kernel.unprivileged_userns_clone = 0)"
    if r.apparmor_restrict_userns:
        return ("AppArmor restricts them (kernel.apparmor_restrict_unprivileged_userns = 1); a runtime with "
                "its own AppArmor profile may still create them: --assume userns=yes if it does")
    return "the host forbids them"


def _fakeroot(rt: Runtime, r: Rootless) -> Check:
    c = _userns(rt, r)
    if not c.ok:
        return c._replace(reason=c.reason.replace("needs ", "fakeroot needs ", 1)) if not c.unknown else c
    for fact in ("subuid", "subgid"):
        have = getattr(r, fact)
        if have is None:
            return unknown("runtime", fact)
        if not have:
            return fail("runtime", f"fakeroot needs the user's range in /etc/{fact}; "
                                   f"{r.user or 'the user'} has none")
    return ok("runtime", "fakeroot (user namespaces, subuid and subgid ranges)")


def _fuse(rt: Runtime, r: Rootless) -> Check:
    if r.fuse is None:
        return unknown("runtime", "fuse")
    if not r.fuse:
        return fail("runtime", "needs FUSE; /dev/fuse is not usable")
    ways = runtime_table().get(rt.name, {}).get("fuse")
    if not ways:
        return ok("runtime", "FUSE")
    if r.fuse_helpers is None:      # not probed (a stated --assume fuse=yes): the device decides
        return ok("runtime", f"FUSE ({rt.name}'s {_alternatives(ways)} not looked for)")
    for helpers in ways:
        if set(helpers) <= set(r.fuse_helpers):
            return ok("runtime", f"FUSE ({' and '.join(helpers)})")
    return fail("runtime", f"needs FUSE: {rt.name} mounts with {_alternatives(ways)}; host has "
                           f"{', '.join(r.fuse_helpers) or 'none of them'}")


def _alternatives(ways) -> str:
    return " or ".join(" and ".join(helpers) for helpers in ways)


def _setuid(rt: Runtime, r: Rootless) -> Check:
    if rt.setuid is None:
        return unknown("runtime", "setuid")
    if not rt.setuid:
        return fail("runtime", f"needs {rt.name} installed setuid root; its starter is not")
    if "config" in runtime_table().get(rt.name, {}):
        if rt.allow_setuid is None:
            return unknown("runtime", "setuid", f"{rt.name}'s configuration was not read: state it with "
                                                "--assume setuid=...")
        if not rt.allow_setuid:
            return fail("runtime", f"needs setuid mode; {rt.name}'s configuration says allow setuid = no")
    return ok("runtime", "setuid")


NEEDS: Dict[str, Callable[[Runtime, Rootless], Check]] = {
    "userns": _userns, "fakeroot": _fakeroot, "fuse": _fuse, "setuid": _setuid}
