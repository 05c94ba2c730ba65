"""What unprivileged container runtimes depend on (spec/host.md "Rootless facts"): user
namespaces (kernel sysctls), the user's subordinate ID ranges (fakeroot, rootless Podman),
``/dev/fuse`` and the FUSE helpers (unprivileged SIF and overlay mounts), unprivileged
overlayfs (the kernel version). Every file through :class:`~compat.host.root.Root`; each
fact's source (or why it is unknown) in ``sources["rootless.<fact>"]``.
"""
from __future__ import annotations

import os
import re
import stat

from compat.host.profile import Rootless
from compat.host.root import Root
from compat.vocab import data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, Optional, Tuple

MAX_USERNS = "/proc/sys/user/max_user_namespaces"
USERNS_CLONE = "/proc/sys/kernel/unprivileged_userns_clone"
APPARMOR_USERNS = "/proc/sys/kernel/apparmor_restrict_unprivileged_userns"
#: Linux 5.11 lets overlayfs be mounted inside a user namespace (commit 459c7c565ac3)
OVERLAY_KERNEL = (5, 11)

_KERNEL = re.compile(r"(\d{1,4})\.(\d{1,4})")
_STATUS_UID = re.compile(r"^Uid:[ \t]{0,16}(\d{1,10})", re.MULTILINE)


def probe_rootless(root: Root, kernel: Optional[str], sources: Dict[str, str]) -> Rootless:
    max_ns = _sysctl_int(root, MAX_USERNS, sources, "rootless.max_user_namespaces")
    clone = _sysctl_bool(root, USERNS_CLONE, sources, "rootless.unprivileged_userns_clone")
    restrict = _sysctl_bool(root, APPARMOR_USERNS, sources, "rootless.apparmor_restrict_userns")
    user, uid = _user(root, sources)
    return Rootless(
        user=user, max_user_namespaces=max_ns, unprivileged_userns_clone=clone,
        apparmor_restrict_userns=restrict, userns=userns(max_ns, clone, restrict, sources),
        subuid=subordinate(root, "/etc/subuid", user, uid, sources),
        subgid=subordinate(root, "/etc/subgid", user, uid, sources),
        fuse=fuse(root, uid, sources), fuse_helpers=fuse_helpers(root, sources),
        overlay=overlay(kernel, sources))


# -- user namespaces -----------------------------------------------------------------------

def _sysctl_text(root: Root, path: str, sources: Dict[str, str], key: str) -> Optional[str]:
    text = root.read(path, 4096)           # a sysctl value is a line
    if text is None:
        absent = root.stat(path) is None
        sources[key] = (f"{root.path(path)} absent (this kernel has no such knob)" if absent
                        else f"unknown: {root.path(path)} unreadable")
        return None
    sources[key] = root.path(path)
    return text.strip()


def _sysctl_int(root: Root, path: str, sources: Dict[str, str], key: str) -> Optional[int]:
    text = _sysctl_text(root, path, sources, key)
    if text is not None and not (text.isdigit() and len(text) <= 10 and int(text) <= 2147483647):
        sources[key] = f"unknown: {root.path(path)} holds no count"
        return None
    return None if text is None else int(text)


def _sysctl_bool(root: Root, path: str, sources: Dict[str, str], key: str) -> Optional[bool]:
    text = _sysctl_text(root, path, sources, key)
    if text is not None and text not in ("0", "1"):
        sources[key] = f"unknown: {root.path(path)} holds neither 0 nor 1"
        return None
    return None if text is None else text == "1"


def userns(max_ns: Optional[int], clone: Optional[bool], restrict: Optional[bool],
           sources: Dict[str, str]) -> Optional[bool]:
    """May an unprivileged user create a user namespace? user_namespaces(7) and the
    kernel's sysctl docs (``user.max_user_namespaces`` 0 = none), Debian's
    ``kernel.unprivileged_userns_clone`` (0 = only privileged callers), Ubuntu's
    ``kernel.apparmor_restrict_unprivileged_userns`` (1 = only programs whose AppArmor
    profile allows ``userns``). An absent Debian or Ubuntu knob does not restrict."""
    if max_ns == 0:
        verdict, why = False, "user.max_user_namespaces is 0"
    elif clone is False:
        verdict, why = False, "kernel.unprivileged_userns_clone is 0 (only privileged processes may create one)"
    elif restrict:
        verdict, why = False, ("restricted by AppArmor (kernel.apparmor_restrict_unprivileged_userns is 1): "
                               "a runtime whose own AppArmor profile allows userns may still create one")
    elif max_ns is None:
        verdict, why = None, "unknown: user.max_user_namespaces could not be read"
    else:
        verdict, why = True, f"user.max_user_namespaces is {max_ns}, no knob restricts unprivileged users"
    sources["rootless.userns"] = why
    return verdict


# -- the user and their subordinate IDs ------------------------------------------------------

def _user(root: Root, sources: Dict[str, str]) -> Tuple[Optional[str], Optional[int]]:
    """The user whose ranges count: live, this process's real uid; below a sysroot, the real
    uid in the capture's ``/proc/self/status`` (the process that made the capture). The name
    comes from that machine's ``/etc/passwd`` (live: then from NSS, LDAP users included)."""
    if root.live:
        uid, how = os.getuid(), "getuid()"
    else:
        m = _STATUS_UID.search(root.read("/proc/self/status") or "")
        if not m:
            sources["rootless.user"] = "unknown: no Uid line in the sysroot's /proc/self/status"
            return None, None
        uid, how = int(m.group(1)), f"Uid in {root.path('/proc/self/status')}"
    name = _passwd_name(root, uid)
    if name is None and root.live:
        try:
            import pwd   # start-up: only for a user /etc/passwd does not list (LDAP, SSSD)
            name = pwd.getpwuid(uid).pw_name
        except (KeyError, ImportError):
            name = None
    sources["rootless.user"] = f"uid {uid} ({how})" + ("" if name else ", no name for it")
    return name or str(uid), uid


def _passwd_name(root: Root, uid: int) -> Optional[str]:
    for line in (root.read("/etc/passwd") or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[2] == str(uid) and fields[0]:
            return fields[0]
    return None


def subordinate(root: Root, path: str, user: Optional[str], uid: Optional[int],
                sources: Dict[str, str]) -> Optional[bool]:
    """Has the user a range in ``/etc/subuid`` or ``/etc/subgid`` (subuid(5): lines
    ``name-or-uid:first:count``)? No file is no range; a file that cannot be read, or no
    known user, is unknown."""
    key = "rootless." + os.path.basename(path)
    if user is None:
        sources[key] = "unknown: the user is unknown"
        return None
    raw = root.read_bytes(path)
    if raw is None:
        absent = root.stat(path) is None
        sources[key] = f"no {root.path(path)}" if absent else f"unknown: {root.path(path)} unreadable"
        return False if absent else None
    names = {user, str(uid)}
    for line in raw.decode("utf-8", "replace").splitlines():
        fields = line.strip().split(":")
        if (len(fields) == 3 and fields[0] in names and fields[1].isdigit() and fields[2].isdigit()
                and 0 < int(fields[2][:10])):
            sources[key] = f"{root.path(path)}: {fields[0]}:{fields[1][:10]}:{fields[2][:10]}"
            return True
    sources[key] = f"{root.path(path)} has no range for {user}"
    return False


# -- FUSE and overlayfs ----------------------------------------------------------------------

def fuse(root: Root, uid: Optional[int], sources: Dict[str, str]) -> Optional[bool]:
    """Can the user open ``/dev/fuse`` for reading and writing? Live: it is a character
    device and ``access(R_OK|W_OK)`` says yes. Below a sysroot: a device node the capture
    kept is judged by its mode; a capture with a ``/dev`` and no ``fuse`` in it has none;
    (a capture that keeps ``/dev`` keeps its devices); else ``/proc/misc`` listing ``fuse`` means the driver is there and the node is the
    standard ``0666`` one (systemd's udev rules); else unknown."""
    path = "/dev/fuse"
    st = root.stat(path)
    where = root.path(path)
    if root.live or st is not None:
        if st is None or not stat.S_ISCHR(st.st_mode):
            sources["rootless.fuse"] = f"no {where}" if st is None else f"{where} is not a character device"
            return False
        mode = stat.S_IMODE(st.st_mode)
        ok = root.access(path, os.R_OK | os.W_OK) if root.live else (
            (mode & 0o006) == 0o006 or (st.st_uid == uid and (mode & 0o600) == 0o600))
        sources["rootless.fuse"] = (f"{where}: character device {os.major(st.st_rdev)},{os.minor(st.st_rdev)}, "
                                    f"mode {mode:04o}, " + ("readable and writable" if ok else "not open to the user"))
        return ok
    dev = root.stat("/dev")
    if dev is not None and stat.S_ISDIR(dev.st_mode):
        sources["rootless.fuse"] = f"the capture's {where.rsplit('/', 1)[0]} has no fuse"
        return False
    misc = root.read("/proc/misc")
    if misc is not None and any(line.split()[1:2] == ["fuse"] for line in misc.splitlines()):
        sources["rootless.fuse"] = (f"fuse registered in {root.path('/proc/misc')} (the capture holds no "
                                    "device node; /dev/fuse is 0666 under systemd's udev rules)")
        return True
    sources["rootless.fuse"] = "unknown: the capture holds no /dev/fuse and /proc/misc does not list fuse"
    return None


def fuse_helpers(root: Root, sources: Dict[str, str]) -> Tuple[str, ...]:
    """The FUSE programs of the table found (live: on PATH; below a sysroot: in its bin dirs)."""
    found = []
    for name in data.fuse_helpers():
        if root.live:
            hit = root.which(name) is not None
        else:
            hit = any(_is_file(root, f"{d}/{name}") for d in data.runtime_files()["bin_dirs"])
        if hit:
            found.append(name)
    sources["rootless.fuse_helpers"] = "PATH" if root.live else "the sysroot's bin dirs"
    return tuple(found)


def _is_file(root: Root, p: str) -> bool:
    st = root.stat(p)
    return st is not None and stat.S_ISREG(st.st_mode)


def overlay(kernel: Optional[str], sources: Dict[str, str]) -> Optional[bool]:
    """Unprivileged overlayfs (inside a user namespace): Linux >= 5.11."""
    m = _KERNEL.match(kernel or "")
    if not m:
        sources["rootless.overlay"] = "unknown: the kernel release is unknown"
        return None
    ok = (int(m.group(1)), int(m.group(2))) >= OVERLAY_KERNEL
    sources["rootless.overlay"] = f"kernel {m.group(1)}.{m.group(2)} {'>=' if ok else '<'} 5.11"
    return ok
