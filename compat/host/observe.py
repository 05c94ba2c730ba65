"""What a detection looked at, and whether it still looks the same.

:class:`RecordingRoot` is a :class:`~compat.host.root.Root` that notes every file, listing,
metadata look-up, ``PATH`` search, process, library and environment variable the probes go
through, each as an *observation*: ``[kind, path, argument, value]``, where ``value`` is what
identifies the answer.  The whole-profile cache (``profile_cache.py``) stores those with the
profile; a warm run recomputes each value with :func:`unchanged` (stat calls, environment look-ups,
a few small reads) and reuses the profile only if every one is unchanged.  A probe added later
is keyed without any change here, as long as it reads through its ``Root``.

How a value identifies what was read depends on the kind of file (spec/host.md, "What is cached"):

* ordinary files, directories and executables: their identity, ``i:`` inode, size, mtime and
  ctime (ns) and mode; a directory's changes when an entry is added, removed or renamed (a
  new ``mpirun`` on ``PATH``), ctime catches a ``touch -d`` or ``cp -p`` that restores an old
  mtime, and mode a ``chmod +x``.  A file changed less than :data:`RACY_NS` before it was
  looked at is kept by content instead (``c:``), as git does with "racily clean" entries:
  timestamps are coarse, and a second write in the same tick would go unseen;
* procfs, sysfs and ``/dev`` (no useful timestamps): by content, read again on every warm run
  (a port going down, a sysctl, a new PCI function, a driver rebound), except the files that
  cannot change before the next boot (:data:`BOOT_CONSTANT`), which the boot id covers;
* environment variables: their values (``None`` when unset).
"""
from __future__ import annotations

import errno
import os
import stat
import time
import zlib
from collections.abc import Mapping

from compat import limits
from compat.errors import BadInput
from compat.io import read_file
from compat.host.root import PROBE_TIMEOUT_S, Root

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Sequence, Tuple
    Observation = List[Any]          # [kind, path, argument, value], JSON as stored

BOOT_ID = "/proc/sys/kernel/random/boot_id"

#: Paths on pseudo-filesystems: their timestamps say nothing, so they are keyed by content.
PSEUDO = ("/proc/", "/sys/", "/dev/")

#: Pseudo-files that stay the same until the next boot (keyed by the boot id alone on the
#: running machine; below a sysroot, a capture's files are keyed by content like the rest):
#: the kernel's release, and cpuinfo (a few hundred KB on a large node, and slow to read there).
BOOT_CONSTANT = frozenset({"/proc/cpuinfo", "/proc/sys/kernel/osrelease"})

#: A PCI function's identity files (a node may have hundreds of functions: reading them all on
#: every warm run would cost milliseconds).
PCI_IDS = frozenset({"vendor", "device", "class", "subsystem_vendor", "subsystem_device"})

#: A file whose mtime or ctime is this close to the moment it was looked at is keyed by content.
RACY_NS = 2_000_000_000

#: Variables a child process started by a probe reads that change its answer: the search
#: paths, and Slurm's configuration file (``srun --mpi=list``). Job-specific variables
#: (``SLURM_JOB_ID``) are deliberately not keys: every job would miss.
CHILD_ENV = ("PATH", "LD_LIBRARY_PATH", "LD_PRELOAD", "SLURM_CONF")

#: The loader's cache: which library a soname opens (``ldconfig`` rewrites it on installs).
LD_SO_CACHE = "/etc/ld.so.cache"


# -- values: what identifies each kind of answer -----------------------------------------------

def _digest(data: Optional[bytes]) -> Optional[str]:
    return None if data is None else f"c:{len(data)}:{zlib.crc32(data):08x}"


def _listing(names: Optional[Sequence[str]]) -> Optional[str]:
    return None if names is None else _digest("\0".join(names).encode("utf-8", "surrogateescape"))


def _content(real: str, st: os.stat_result) -> str:
    """A racily changed file or directory by its owner, mode and content (a file larger than
    the read bound never matches: its entry is a miss until the file has been left alone)."""
    meta = f"c:{st.st_mode:o}:{st.st_uid}:{st.st_gid}:"
    try:
        if stat.S_ISDIR(st.st_mode):
            body = _listing(sorted(os.listdir(real)))
        elif stat.S_ISREG(st.st_mode) and st.st_size <= limits.SYSROOT_FILE_BYTES:
            body = _digest(read_file(real, limits.SYSROOT_FILE_BYTES, real))
        else:
            return meta + "unreadable"
    except (OSError, BadInput):
        return meta + "unreadable"
    return meta + (body or "?")


def identity(real: Optional[str], follow: bool = True, like: Any = None) -> str:
    """``i:ino:size:mtime:ctime:mode`` of a path on an ordinary filesystem, ``-`` when absent,
    ``?`` when it cannot be looked at, ``c:...`` (content) when it changed a moment ago or when
    ``like`` (the stored value it is compared with) was kept by content."""
    st = _stat(real, follow)
    if isinstance(st, str):
        return st
    by_content = isinstance(like, str) and like.startswith("c:")
    if by_content or time.time_ns() - max(st.st_mtime_ns, st.st_ctime_ns) < RACY_NS:
        return _content(real, st)
    return _identity(st)


def file_identity(path: str) -> str:
    """``identity`` without the content rule, for files no probe reads (the code's own)."""
    st = _stat(path, True)
    return st if isinstance(st, str) else _identity(st)


def _stat(real: Optional[str], follow: bool):
    if real is None:
        return "?"
    try:
        return os.stat(real) if follow else os.lstat(real)
    except OSError as exc:
        return "-" if exc.errno in (errno.ENOENT, errno.ENOTDIR) else "?"
    except ValueError:
        return "?"


def _identity(st: os.stat_result) -> str:
    return f"i:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}:{st.st_mode:o}"


def _pseudo(p: str) -> bool:
    return (p.rstrip("/") + "/").startswith(PSEUDO)


def _boot_constant(p: str) -> bool:
    """Fixed until the next boot: :data:`BOOT_CONSTANT`, and a PCI function's IDs (fixed while
    it exists; the listing of ``/sys/bus/pci/devices``, keyed by content, says which exist)."""
    if p in BOOT_CONSTANT:
        return True
    head, _, name = p.rpartition("/")
    return name in PCI_IDS and head.rpartition("/")[0] == "/sys/bus/pci/devices"


def _meta(st: Optional[os.stat_result]) -> Optional[str]:
    """A pseudo-file's metadata that means something: type and permissions, owner, device."""
    return None if st is None else f"m:{st.st_mode:o}:{st.st_uid}:{st.st_gid}:{st.st_rdev}"


def _path_dirs(path: str) -> List[str]:
    """PATH's directories as ``shutil.which`` walks them (each once)."""
    return list(dict.fromkeys(path.split(os.pathsep)))


def _runnable(path: str) -> bool:
    """What ``shutil.which`` takes: an existing non-directory this process may execute."""
    return os.access(path, os.X_OK) and not os.path.isdir(path)


class Observer:
    """Computes observation values below one root, for recording and for checking: each
    method takes ``(path, argument, like)``, ``like`` being the stored value when checking."""

    def __init__(self, root: Root, env: Mapping[str, str], boot_known: bool):
        self.root, self.env, self.boot_known = root, env, boot_known

    def read(self, p: str, limit: int, like: Any = None, data: Any = False) -> Any:
        if _pseudo(p):
            if self.root.live and self.boot_known and _boot_constant(p):
                return "boot"
            return _digest(Root.read_bytes(self.root, p, limit) if data is False else data)
        return identity(self.root.confined(p), like=like)

    def list(self, p: str, _arg: Any = None, like: Any = None) -> Any:
        if _pseudo(p):
            return _listing(Root.scan(self.root, p))
        return identity(self.root.confined(p), like=like)

    def node(self, p: str, _arg: Any = None, like: Any = None) -> Any:
        if _pseudo(p):
            st = Root.stat(self.root, p, follow_last=False)
            link = Root.link_name(self.root, p) if st is not None and stat.S_ISLNK(st.st_mode) else ""
            return None if st is None else f"{_meta(st)}:{link}"
        return identity(self.root.confined(p, follow_last=False), follow=False, like=like)

    def stat(self, p: str, follow: bool, like: Any = None) -> Any:
        if _pseudo(p):
            return _meta(Root.stat(self.root, p, follow_last=bool(follow)))
        return identity(self.root.confined(p, follow_last=bool(follow)), follow=bool(follow), like=like)

    def access(self, p: str, mode: int, like: Any = None) -> Any:
        return Root.access(self.root, p, mode)

    def which(self, name: str, _arg: Any = None, like: Any = None) -> Any:
        """Every place ``shutil.which`` looks, up to the one it takes: a new executable earlier
        on PATH, a replaced or re-linked one, a ``chmod +x`` all change this."""
        like = like if isinstance(like, list) else []
        out = []
        for i, d in enumerate(_path_dirs(self.env.get("PATH", os.defpath))):
            candidate = os.path.join(d, name)
            here = identity(candidate, like=like[i] if i < len(like) else None)
            out.append(here)
            if here not in ("-", "?") and _runnable(candidate):
                break
        return out

    def exe(self, p: str, _arg: Any = None, like: Any = None) -> Any:
        """The program a probe ran, or a file its answer depends on (a bare name: where PATH
        finds it)."""
        return identity(p, like=like) if os.sep in p else self.which(p, None, like)

    def env_var(self, name: str, _arg: Any = None, like: Any = None) -> Any:
        return self.env.get(name)

    def value(self, kind: str, p: str, arg: Any, like: Any = None) -> Any:
        return getattr(self, KINDS[kind])(p, arg, like)


def _none(arg: Any) -> bool:
    return arg is None


#: what each kind's argument may be (a read's size bound, a stat's follow_last, access's mode)
_ARGUMENTS = {
    "read": lambda a: type(a) is int and 0 <= a <= limits.SYSROOT_FILE_BYTES,
    "stat": lambda a: type(a) is bool,
    "access": lambda a: type(a) is int and 0 <= a <= 7,
}

#: observation kind -> the Observer method computing its value
KINDS = {"read": "read", "list": "list", "node": "node", "stat": "stat", "access": "access",
         "which": "which", "exe": "exe", "env": "env_var"}


# -- recording ------------------------------------------------------------------------------

class _RecordingEnv(Mapping):
    """The probes' environment: every look-up is an observation. Iterating it records nothing
    more: a probe reads variables by name (a child process gets the unwrapped environment, and
    :meth:`RecordingRoot.run` keys it by :data:`CHILD_ENV`)."""

    def __init__(self, env: Mapping[str, str], note):
        self._env, self._note = env, note

    def __getitem__(self, name):
        self._note("env", name, None, self._env.get(name))
        return self._env[name]

    def get(self, name, default=None):
        self._note("env", name, None, self._env.get(name))
        return self._env.get(name, default)

    def __contains__(self, name):
        self._note("env", name, None, self._env.get(name))
        return name in self._env

    def __iter__(self):
        return iter(self._env)

    def __len__(self):
        return len(self._env)


class RecordingRoot(Root):
    """A :class:`Root` that records what identifies each answer it gives (:attr:`observed`).
    Its public methods behave exactly as :class:`Root`'s."""

    def __init__(self, sysroot: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
        super().__init__(sysroot, env=env)
        self._seen: Dict[Tuple[str, str, str], Observation] = {}
        self._observer = Observer(self, self._environ, boot_known=False)
        boot = Root.read_bytes(self, BOOT_ID, 256)          # first: a reboot misses at once
        self._note("read", BOOT_ID, 256, self._observer.read(BOOT_ID, 256, data=boot))
        self._observer.boot_known = boot is not None
        self.env = _RecordingEnv(self._environ, self._note)

    @property
    def observed(self) -> List[Observation]:
        return list(self._seen.values())

    def _note(self, kind: str, p: str, arg: Any, value: Any = None, compute: bool = False) -> None:
        key = (kind, p, repr(arg))
        if key not in self._seen:            # the first look counts: it came before the answer
            self._seen[key] = [kind, p, arg, self._observer.value(kind, p, arg) if compute else value]

    def _look(self, kind: str, p: str, arg: Any = None) -> None:
        self._note(kind, p, arg, compute=True)

    # files -----------------------------------------------------------------------------------
    def read_bytes(self, p: str, limit: int = limits.SYSROOT_FILE_BYTES) -> Optional[bytes]:
        if _pseudo(p):                       # the content is the key: no second read
            data = super().read_bytes(p, limit)
            self._note("read", p, limit, self._observer.read(p, limit, data=data))
            return data
        self._look("read", p, limit)         # identity before the read: a change after it misses
        return super().read_bytes(p, limit)

    def scan(self, p: str) -> Optional[List[str]]:
        self._look("list", p)
        return super().scan(p)

    def exists(self, p: str) -> bool:
        self._look("node", p)
        return super().exists(p)

    def link_name(self, p: str) -> Optional[str]:
        self._look("node", p)
        return super().link_name(p)

    def stat(self, p: str, follow_last: bool = True) -> Optional[os.stat_result]:
        self._look("stat", p, follow_last)
        return super().stat(p, follow_last)

    def access(self, p: str, mode: int) -> Optional[bool]:
        self._look("access", p, mode)
        return super().access(p, mode)

    # processes and libraries -------------------------------------------------------------------
    def which(self, name: str) -> Optional[str]:
        if self.live:
            self.env.get("PATH")
            self._look("which", name)
        return super().which(name)

    def run(self, argv: Sequence[str], timeout: float = PROBE_TIMEOUT_S,
            extra_env: Optional[Dict[str, str]] = None) -> Optional[str]:
        if argv:
            self.note_child([argv[0]])
        return super().run(argv, timeout, extra_env)

    def note_child(self, depends_on: Sequence[str]) -> None:
        """What a child's answer depends on, whether it runs or the probe cache answers for it:
        the files it names (the executable), the loader's inputs, :data:`CHILD_ENV`."""
        if not self.live:
            return
        for p in depends_on:
            self._look("exe", p)
        self._loader_keys()
        for name in CHILD_ENV:
            self.env.get(name)

    def load_library(self, name: str):
        if self.live:
            self._loader_keys()
        return super().load_library(name)

    def _loader_keys(self) -> None:
        """What decides which library a soname opens: the loader's cache, LD_LIBRARY_PATH and
        the directories it names."""
        self._look("stat", LD_SO_CACHE, True)
        for d in (self.env.get("LD_LIBRARY_PATH") or "").split(os.pathsep):
            if d:
                self._look("list", d)


def unchanged(root: Root, observed: Sequence[Observation]) -> bool:
    """Does every observation still hold below ``root`` (a plain Root: nothing recorded)?
    Stops at the first change; a malformed observation is a change. The first one must be
    the boot id: it also says whether boot-constant files were keyed by it."""
    if not observed or not _well_formed(observed[0]) or observed[0][:3] != ["read", BOOT_ID, 256]:
        return False
    observer = Observer(root, root.env, boot_known=observed[0][3] is not None)
    for obs in observed:
        if not _well_formed(obs):
            return False
        kind, p, arg, stored = obs
        try:
            if observer.value(kind, p, arg, like=stored) != stored:
                return False
        except (OSError, ValueError, TypeError):
            return False
    return True


def _well_formed(obs: Any) -> bool:
    """``[kind, path, argument, value]`` with a known kind, a path, and an argument that kind takes."""
    return isinstance(obs, list) and len(obs) == 4 and isinstance(obs[0], str) and obs[0] in KINDS \
        and isinstance(obs[1], str) and _ARGUMENTS.get(obs[0], _none)(obs[2])
