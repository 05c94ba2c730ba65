"""Container runtimes on the host (``compat/data/runtimes.json``: apptainer, singularity,
podman, docker, enroot, sarus, charliecloud, shifter): where each is, its version, and for
Apptainer/Singularity the setuid starter and the ``apptainer.conf`` keys that decide what it
may do (spec/host.md "Runtimes"). What unprivileged runtimes need from the kernel and the
user is :mod:`compat.host.rootless`.

Live: the executable on PATH, its version from its version option (kept in the probe
cache). Below a sysroot nothing runs: executables in the capture's bin dirs, versions from
files (dpkg's status database, a script's version variable), else unknown with the reason.
Every file is read and every mode is looked at through :class:`~compat.host.root.Root`.
"""
from __future__ import annotations

import os
import re
import stat

from compat import limits
from compat.host.cache import ProbeCache, is_text
from compat.host.profile import Runtime
from compat.host.root import Root
from compat.vocab import data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

_RUNTIME_VERSION = re.compile(r"(\d{1,6}\.\d{1,6}(?:\.\d{1,6})?(?:[-~+][\w.+~-]*)?)")
#: a Debian version: optional epoch, then the upstream version's leading numbers
_DPKG_VERSION = re.compile(r"(?:\d{1,9}:)?(\d{1,6}(?:\.\d{1,6}){1,3})")
#: ``readonly ENROOT_VERSION="3.4.1"`` in a shell script
_SCRIPT_VERSION = re.compile(r'^[ \t]{0,16}(?:readonly[ \t]{1,16})?([A-Z_]{1,64})="?(\d{1,6}(?:\.\d{1,6}){1,3})',
                             re.MULTILINE)
#: an apptainer.conf key as Apptainer's parser accepts it before '=': letters, spaces, '_', '-',
#: then blanks
_CONF_KEY = re.compile(r"[a-zA-Z _-]{1,64}[ \t]{0,16}")
_GO_OCTAL = re.compile(r"0[0-7_]{1,24}")
_CONF_BOOLS = {"allow setuid": "allow_setuid", "allow kernel squashfs": "allow_kernel_squashfs"}
_MAX_LOOP_DEVICES = 1 << 20            # the profile schema's bound


def probe_runtimes(root: Root, sources: Dict[str, str], cache: ProbeCache) -> Tuple[Runtime, ...]:
    """Every runtime of the table found on this host, in the table's order."""
    dpkg = _Dpkg(root)
    found = []
    for name, spec in data.runtimes().items():
        path = _find(root, spec["executables"])
        if path is None:
            continue
        version, how = (_live_version(root, path, spec, cache) if root.live
                        else _file_version(root, name, path, dpkg))
        rt = Runtime(name=name, version=version, path=path)
        sources[f"runtime.{name}"] = f"{root.path(path)}; version {how}"
        if "config" in spec:
            rt = _setuid_facts(root, rt, spec, sources)
        found.append(rt)
    sources["runtimes"] = ("PATH, each with its version option" if root.live else
                           "executables in the sysroot's " + ", ".join(data.runtime_files()["bin_dirs"])
                           + " (nothing run)")
    return tuple(found)


# -- where, and which version --------------------------------------------------------------

def _find(root: Root, executables: List[str]) -> Optional[str]:
    for exe in executables:
        if root.live:
            path = root.which(exe)
            if path:
                return path
            continue
        for d in data.runtime_files()["bin_dirs"]:
            st = root.stat(f"{d}/{exe}")
            if st is not None and stat.S_ISREG(st.st_mode):
                return f"{d}/{exe}"
    return None


def _live_version(root: Root, path: str, spec: dict, cache: ProbeCache) -> Tuple[Optional[str], str]:
    real = os.path.realpath(path)
    args = spec["version_args"]
    # ch-run refuses to answer without $USER ("error: $USER not set"): a batch job may lack it
    extra = {} if root.env.get("USER") else {"USER": _user_name()}
    text = cache.get(f"version|{real}|{' '.join(args)}", [real],
                     lambda: root.run([real, *args], extra_env=extra) or "", is_text)
    m = _RUNTIME_VERSION.search(text or "")
    shown = f"`{os.path.basename(path)} {' '.join(args)}`"
    return (m.group(1), f"from {shown}") if m else (None, f"unknown: {shown} printed no version")


def _user_name() -> str:
    try:
        import pwd   # start-up: only when a version probe runs without $USER
        return pwd.getpwuid(os.getuid()).pw_name
    except (KeyError, ImportError):
        return str(os.getuid())


class _Dpkg:
    """Installed package versions from ``/var/lib/dpkg/status`` (read once, on first use; a
    few MB on a full system, so only the stanzas of the packages asked for are parsed)."""

    def __init__(self, root: Root):
        self.root = root
        self._text: Optional[str] = None

    def version(self, package: str) -> Optional[str]:
        if self._text is None:
            self._text = self.root.read("/var/lib/dpkg/status") or ""
        return dpkg_version(self._text, package)


def dpkg_version(text: str, package: str) -> Optional[str]:
    """The Version of ``package``'s stanza whose Status ends in ``installed`` (deb-control(5);
    a removed package keeps ``deinstall ok config-files``)."""
    needle = f"Package: {package}\n"
    at = text.find(needle)
    while at >= 0:
        if at == 0 or text[at - 1] == "\n":
            end = text.find("\n\n", at)
            fields = {}
            for line in text[at:end if end >= 0 else len(text)].splitlines():
                key, sep, value = line.partition(":")
                if sep and line[:1] not in (" ", "\t"):
                    fields[key] = value.strip()
            if fields.get("Status", "").endswith(" installed") and fields.get("Version"):
                return fields["Version"]
        at = text.find(needle, at + 1)
    return None


def _file_version(root: Root, name: str, path: str, dpkg: _Dpkg) -> Tuple[Optional[str], str]:
    files = data.runtime_files()
    for package in files["packages"].get(name, ()):
        full = dpkg.version(package)
        m = _DPKG_VERSION.match(full or "")
        if m:
            return m.group(1), f"from the dpkg status of package {package} ({full})"
    variable = files["version_variable"].get(name)
    if variable:
        script = root.read(path, limits.RUNTIME_SCRIPT_BYTES) or ""
        for m in _SCRIPT_VERSION.finditer(script if script.startswith("#!") else ""):
            if m.group(1) == variable:
                return m.group(2), f"from {variable} in the script"
    return None, "unknown: not run below a sysroot, and no package record or version variable says it"


# -- Apptainer / Singularity: the setuid starter and the configuration -----------------------

def _prefix(root: Root, path: str) -> str:
    """The installation prefix of an executable (``/opt/apptainer/bin/apptainer`` ->
    ``/opt/apptainer``), symlinks resolved the way reads resolve them."""
    if root.live:
        real = os.path.realpath(path)
    else:
        inside = root.confined(path) or root.path(path)
        real = "/" + os.path.relpath(inside, root.sysroot)
    return os.path.dirname(os.path.dirname(real))


def _setuid_facts(root: Root, rt: Runtime, spec: dict, sources: Dict[str, str]) -> Runtime:
    prefix = _prefix(root, rt.path or "")
    name = rt.name
    starters = list(dict.fromkeys([f"{prefix}/libexec/{name}/bin/starter-suid", *spec.get("starter_suid", ())]))
    setuid, why = starter_suid(root, starters)
    sources[f"runtime.{name}.setuid"] = why
    configs = list(dict.fromkeys([f"{prefix}/etc/{name}/{name}.conf", *spec["config"]]))
    values, why = read_config(root, configs)
    sources[f"runtime.{name}.config"] = why
    return rt._replace(setuid=setuid, **values)


def starter_suid(root: Root, candidates: List[str]) -> Tuple[Optional[bool], str]:
    """Is the setuid starter installed: a regular file owned by root with the setuid bit
    (Apptainer admin guide, "setuid installation")? A ``starter`` without ``starter-suid``
    beside it is a non-setuid installation (False); neither found is unknown."""
    for p in candidates:
        st = root.stat(p)
        if st is None:
            continue
        where = root.path(p)
        if not stat.S_ISREG(st.st_mode):
            return False, f"{where}: not a regular file"
        ok = st.st_uid == 0 and bool(st.st_mode & stat.S_ISUID)
        return ok, (f"{where}: owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):04o} "
                    f"({'setuid root' if ok else 'not setuid root'})")
    for p in candidates:
        starter = os.path.join(os.path.dirname(p), "starter")
        if root.stat(starter) is not None:
            return False, f"{root.path(starter)} without starter-suid beside it (non-setuid installation)"
    return None, "unknown: no starter or starter-suid in " + ", ".join(os.path.dirname(p) for p in candidates)


def read_config(root: Root, candidates: List[str]) -> Tuple[Dict[str, object], str]:
    """The first configuration file found, its three keys as the runtime reads them."""
    for p in candidates:
        st = root.stat(p)
        if st is None:
            continue
        where = root.path(p)
        text = root.read(p, limits.RUNTIME_CONFIG_BYTES) if stat.S_ISREG(st.st_mode) else None
        if text is None or "\x00" in text:
            return {}, (f"unknown: {where} is not a text file of at most "
                        f"{limits.RUNTIME_CONFIG_BYTES // limits.MiB} MiB")
        values, notes = config_values(text)
        return values, f"{where} ({'; '.join(notes)})"
    return {}, "unknown: no configuration file in " + ", ".join(candidates)


def parse_config(text: str) -> Tuple[Dict[str, str], int]:
    """``apptainer.conf`` directives as Apptainer's parser reads them
    (``pkg/util/apptainerconf/parser.go``): a line ``key = value`` where the key is letters,
    blanks, ``_`` and ``-``; anything else (``#`` comments, blank lines) is no directive; an
    empty value is ignored; the first value of a key is the one used. Returns the directives
    and the count of lines that are neither directives, comments nor blank."""
    directives: Dict[str, str] = {}
    malformed = 0
    for line in text.split("\n"):            # Go's (?m) lines end at \n only
        body = line.lstrip("\t\n\f\r ")       # Go's \s
        if not body.strip() or body.startswith("#"):
            continue
        key, sep, value = body.partition("=")
        if not sep or not _CONF_KEY.fullmatch(key):
            malformed += 1
            continue
        key = key.strip()
        value = value.strip()
        if value and key not in directives:
            directives[key] = value
    return directives, malformed


def config_values(text: str) -> Tuple[Dict[str, object], List[str]]:
    """The Runtime fields from a configuration text, with a note per key (its value, or the
    documented default when absent, or why it is unknown)."""
    directives, malformed = parse_config(text)
    defaults = data.runtime_files()["config_defaults"]
    out: Dict[str, object] = {}
    notes = []
    for key in ("allow setuid", "allow kernel squashfs", "max loop devices"):
        raw = directives.get(key)
        value = _config_value(key, raw if raw is not None else defaults[key])
        field = _CONF_BOOLS.get(key, "max_loop_devices")
        if value is None:
            notes.append(f"{key} = {raw[:40]}: not a valid value, the runtime refuses this file")
            continue
        out[field] = value
        notes.append(f"{key} = {raw}" if raw is not None else f"{key} absent, default {defaults[key]}")
    if malformed:
        notes.append(f"{malformed} malformed line{'s' if malformed > 1 else ''} ignored")
    return out, notes


def _config_value(key: str, raw: str):
    if key in _CONF_BOOLS:
        return {"yes": True, "no": False}.get(raw)
    return _go_uint(raw)


def _go_uint(raw: str) -> Optional[int]:
    """An unsigned integer as Go's ``strconv.ParseUint(s, 0, 64)`` reads it (``0x`` hex,
    leading ``0`` octal, ``_`` separators), within the profile's bound; else None."""
    if not raw[:1].isdigit() or len(raw) > 24:
        return None
    try:
        n = int(raw, 8) if _GO_OCTAL.fullmatch(raw) else int(raw, 0)
    except ValueError:
        return None
    return n if 0 <= n <= _MAX_LOOP_DEVICES else None
