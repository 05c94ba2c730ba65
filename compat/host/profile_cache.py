"""``compat.host.detect``: the whole host profile from a cache when nothing that decides it has
changed, else every probe (``detection.py``), recorded.

A cold detection runs below a :class:`~compat.host.observe.RecordingRoot`, which notes what
identifies everything the probes read, listed, looked up on ``PATH``, ran, loaded, and which
environment variables they read. The entry stores those observations with the profile, under
the arguments and the code that made it (:func:`arguments`). A warm run checks the arguments,
then each observation (:func:`compat.host.observe.unchanged`: stat calls, environment look-ups,
a few small procfs/sysfs reads), and returns the stored profile; it imports no probe module
and no archspec. ``--assume`` is applied after the cache (``os.arch`` steers probing, so it is
an argument). ``COMPAT_NO_CACHE=1`` turns the cache off. Where the profile is kept and why
each key is there: spec/host.md, "What is cached".

The cache file is input compat did not write this run: read bounded
(``limits.PROFILE_CACHE_BYTES``), and anything unexpected in it (not JSON, wrong shapes, a
stored profile that fails ``schemas/host.schema.json``) is a miss, never an error.
"""
from __future__ import annotations

import json
import os
import sys
from importlib.machinery import PathFinder

from compat import io, limits
from compat.errors import BadInput
from compat.host.observe import RecordingRoot, file_identity, unchanged
from compat.host.profile import Host
from compat.host.root import Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

FORMAT = 1

#: The code whose answers are cached: compat's probes, value grammars and knowledge tables,
#: archspec (its rules and microarchitectures.json), NVML's bindings. A change to any file
#: there (an upgrade, an edit in a checkout) is a miss.
CODE = (("compat", ("host", "vocab", "data")), ("archspec", ("", "cpu", "json/cpu")), ("pynvml", ()))


def detect(sysroot: Optional[str] = None, assume: Union[None, Mapping[str, str], Iterable[str]] = None,
           probe_tools: bool = False, env: Optional[Mapping[str, str]] = None) -> Host:
    """compat.host.detect."""
    _assume = None
    assumptions: Dict[str, str] = {}
    if assume:
        from compat.host import assume as _assume  # start-up: only when there is something to assume
        assumptions = _assume.parse(assume)
    sysroot = sysroot or (env if env is not None else os.environ).get("COMPAT_SYSROOT") or None
    if sysroot and not os.path.isdir(sysroot):
        raise BadInput(f"--sysroot {sysroot}: not a directory")
    host = profile(sysroot, env, probe_tools, assumptions.get("os.arch"))
    if not assumptions:
        return host
    return _assume.apply_checked(host, assumptions)


def profile(sysroot: Optional[str], env: Optional[Mapping[str, str]], probe_tools: bool,
            arch: Optional[str]) -> Host:
    """The profile before ``--assume``: cached, or probed and cached."""
    cache = ProfileCache()
    args = arguments(sysroot, probe_tools, arch) if cache.enabled else {}
    if cache.enabled:
        host = cache.lookup(args, Root(sysroot, env=env))
        if host is not None:
            return host
    # start-up: the probes (and archspec, pynvml) load only when the cache cannot answer
    from compat.host.detection import probe
    root = RecordingRoot(sysroot, env=env) if cache.enabled else Root(sysroot, env=env)
    host = probe(root, probe_tools, {"os.arch": arch} if arch else {})
    if cache.enabled:
        cache.store(args, root.observed, host)
    return host


def arguments(sysroot: Optional[str], probe_tools: bool, arch: Optional[str]) -> Dict[str, Any]:
    """What decides the profile besides the files: the options, who asks (user namespaces,
    ``access()`` answers), the interpreter and its C library (``confstr``), the machine type,
    and the code (:data:`CODE`)."""
    try:
        libc = os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):
        libc = None
    version = getattr(sys.modules.get("compat"), "__version__", None)    # loaded before any of its modules
    return {"sysroot": os.path.realpath(sysroot) if sysroot else None, "probe_tools": bool(probe_tools),
            "arch": arch, "compat": version, "python": sys.hexversion, "prefix": sys.prefix, "libc": libc,
            "machine": os.uname().machine, "uid": os.getuid(), "groups": sorted(os.getgroups()),
            "code": {name: code_identity(name, parts) for name, parts in CODE}}


def code_identity(name: str, parts) -> Optional[str]:
    """Where the package ``name`` is loaded (or would be, not importing it) and the identity
    of every file in its directories ``parts`` (a module: its file), or None when absent."""
    module = sys.modules.get(name)
    spec = getattr(module, "__spec__", None) if module is not None else _find(name)
    if spec is None:
        return None
    dirs = list(spec.submodule_search_locations or ())
    if not dirs:
        return f"{spec.origin}|{file_identity(spec.origin)}"
    out = []
    for part in parts:
        d = os.path.join(dirs[0], part)
        try:
            names = sorted(n for n in os.listdir(d) if n != "__pycache__")
        except OSError:
            out.append(f"{part}:-")
            continue
        out += [f"{part}/{n}={file_identity(os.path.join(d, n))}" for n in names]
    return f"{dirs[0]}|" + ";".join(out)


def _find(name: str):
    """The spec ``import name`` would use, without importing it."""
    try:
        return PathFinder.find_spec(name)
    except (ImportError, ValueError):
        return None


def _node_name() -> str:
    """This machine's name as a file name (one file per node: a home directory shared by a
    cluster's nodes holds one each, instead of one that every node rewrites)."""
    name = "".join(c if c.isalnum() or c in "._-" else "_" for c in os.uname().nodename)[:64]
    return name.lstrip(".") or "host"


class ProfileCache:
    """``$COMPAT_CACHE_DIR/profile-<node>.json``: at most ``limits.PROFILE_CACHE_ENTRIES``
    entries (one per sysroot, ``--probe-tools``, assumed ``os.arch`` and Python environment),
    newest first."""

    def __init__(self, enabled: Optional[bool] = None, path: Optional[str] = None):
        if enabled is None:
            enabled = os.environ.get("COMPAT_NO_CACHE", "") in ("", "0")
        self.enabled = enabled
        self.path = path or os.path.join(io.cache_dir(), f"profile-{_node_name()}.json")

    def entries(self) -> List[dict]:
        """The stored entries of the right shape; a file that cannot be read or is not this
        format is none."""
        try:
            data = io.load_json(io.read_file(self.path, limits.PROFILE_CACHE_BYTES, "profile cache"),
                                "profile cache")
        except BadInput:
            return []
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("entries"), list):
            return []
        return [e for e in data["entries"] if isinstance(e, dict) and isinstance(e.get("args"), dict)
                and isinstance(e.get("observed"), list) and isinstance(e.get("profile"), dict)]

    def lookup(self, args: Dict[str, Any], root: Root) -> Optional[Host]:
        """The stored profile made with these arguments, if everything it observed holds."""
        for entry in self.entries():
            if entry["args"] == args:
                return _host(entry["profile"]) if unchanged(root, entry["observed"]) else None
        return None

    def store(self, args: Dict[str, Any], observed: List[list], host: Host) -> None:
        """Keep this entry first, drop the one it replaces and the oldest past the bounds.
        A cache that cannot be written is only slower."""
        entry = {"args": args, "observed": observed, "profile": host.to_dict()}
        kept = [entry] + [e for e in self.entries() if _slot(e["args"]) != _slot(args)]
        kept = kept[:limits.PROFILE_CACHE_ENTRIES]
        while kept:
            data = json.dumps({"format": FORMAT, "entries": kept}, separators=(",", ":")).encode()
            if len(data) <= limits.PROFILE_CACHE_BYTES:
                break
            kept.pop()
        if not kept:
            return
        try:
            os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
            io.write_atomically(self.path, data)
        except OSError:
            pass


def _slot(args: Mapping[str, Any]):
    """Entries replace each other per options and Python environment (two virtual
    environments on one node do not evict each other's profile on every run)."""
    return args.get("sysroot"), args.get("probe_tools"), args.get("arch"), args.get("prefix")


def _host(data: dict) -> Optional[Host]:
    """A stored profile, checked like a ``--host`` file; one that fails is a miss."""
    from compat.schema import validate_host  # start-up: only a cache hit checks a stored profile
    if validate_host(data):
        return None
    try:
        return Host.from_dict(data)
    except (TypeError, ValueError):
        return None
