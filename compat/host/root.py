"""Where probes look: the running machine, or another machine's files below a sysroot.

Every probe goes through a :class:`Root`, for files, listings, metadata, ``PATH`` look-ups,
processes, libraries and the environment (``Root.env``): on a cold detection a
:class:`~compat.host.observe.RecordingRoot` notes what identifies each answer, and that is
what the whole-profile cache is keyed by; what a probe reads around its Root is not a key.
Reading never raises: a missing, empty or unreadable file is ``None`` (unknown), as NFD
treats its host path.  Under a sysroot
nothing is executed and the environment is not read: a sysroot is another machine's files.

A sysroot is hostile input.  Only regular files are read (a FIFO or a device where
``/proc/cpuinfo`` was expected is unreadable, not a hang), each within a size bound
(``compat.limits``), and symbolic links resolve *inside* the sysroot as if it were ``/``
(an absolute target is re-rooted there, ``..`` stops at its top): a capture's link to
``/etc/shadow`` or ``/dev/zero`` reads the capture's own file of that name, or nothing.
"""
from __future__ import annotations

import errno
import os
import stat
import zlib

from compat import limits
from compat.errors import BadInput
from compat.io import read_file

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Optional, Sequence

#: Wall-clock bound of one child process started by a probe.
PROBE_TIMEOUT_S = 2.0


class Root:
    def __init__(self, sysroot: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
        self.sysroot = os.path.realpath(sysroot) if sysroot else None
        if env is not None:
            self.env: Mapping[str, str] = env
        else:
            self.env = {} if self.sysroot else os.environ
        self._environ = self.env          # what a child gets (``env`` may be wrapped to record look-ups)

    @property
    def live(self) -> bool:
        """True when probing the running machine (processes may be started)."""
        return self.sysroot is None

    def path(self, p: str) -> str:
        """Where ``p`` lies, for messages (:meth:`confined` is what is opened)."""
        if self.sysroot is None:
            return p
        return os.path.join(self.sysroot, p.lstrip("/"))

    def confined(self, p: str, follow_last: bool = True) -> Optional[str]:
        """The real path of ``p`` with every symlink resolved inside the sysroot (chroot
        semantics), or None when resolution loops or is too deep. Live: ``p`` itself."""
        if self.sysroot is None:
            return p
        parts = [x for x in p.split("/") if x]
        done: List[str] = []                  # components below the sysroot, all real dirs/files
        hops = 0
        while parts:
            name = parts.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            here = os.path.join(self.sysroot, *done, name)
            try:
                st = os.lstat(here)
            except OSError:
                return os.path.join(self.sysroot, *done, name, *parts)   # absent: reads fail
            if stat.S_ISLNK(st.st_mode) and (parts or follow_last):
                hops += 1
                if hops > limits.SYMLINK_HOPS:
                    return None
                try:
                    target = os.readlink(here)
                except OSError:
                    return None
                if target.startswith("/"):
                    done = []
                parts = [x for x in target.split("/") if x] + parts
                continue
            done.append(name)
        return os.path.join(self.sysroot, *done)

    def read(self, p: str, limit: int = limits.SYSROOT_FILE_BYTES) -> Optional[str]:
        """The file's text (stripped of a trailing newline), or None if absent, unreadable, not
        a regular file, or larger than ``limit``."""
        data = self.read_bytes(p, limit)
        if data is None:
            return None
        text = data.decode("utf-8", "replace").rstrip("\n")
        return text if text.strip() else None

    def read_bytes(self, p: str, limit: int = limits.SYSROOT_FILE_BYTES) -> Optional[bytes]:
        real = self.confined(p)
        if real is None:
            return None
        try:
            return read_file(real, limit, p)
        except BadInput:
            return None

    def read_gzip(self, p: str, limit: int = limits.CONFIG_GZ_BYTES) -> Optional[str]:
        """A gzip file's text (``/proc/config.gz``), decompressed to at most ``limit`` bytes;
        None if absent, corrupt, or larger (a 5 MB bomb of 1.2 GB stops at the bound)."""
        raw = self.read_bytes(p, limits.SYSROOT_FILE_BYTES)
        if not raw:
            return None
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)      # gzip header and trailer
        try:
            out = inflater.decompress(raw, limit + 1)
        except zlib.error:
            return None
        if len(out) > limit or inflater.unconsumed_tail or not inflater.eof:
            return None                                          # too large, or truncated
        return out.decode("utf-8", "replace")

    def scan(self, p: str) -> Optional[List[str]]:
        """Entries of directory ``p``: [] when it does not exist, None when it exists but
        cannot be listed (unknown, never a confident "nothing there")."""
        real = self.confined(p)
        if real is None:
            return None
        try:
            return sorted(os.listdir(real))
        except FileNotFoundError:
            return []
        except OSError as exc:
            return [] if exc.errno == errno.ENOENT else None

    def listdir(self, p: str) -> List[str]:
        """Entries of directory ``p``, [] when absent or unreadable (see :meth:`scan`)."""
        return self.scan(p) or []

    def glob(self, pattern: str) -> List[str]:
        """The paths matching ``pattern``, whose components are names or ``*`` (any name not
        starting with a dot), each listed and tested like any read: inside the sysroot."""
        found = [""]
        for part in (x for x in pattern.split("/") if x):
            if part == "*":
                found = [f"{d}/{n}" for d in found for n in self.listdir(d or "/") if not n.startswith(".")]
            else:
                found = [f"{d}/{part}" for d in found if self.exists(f"{d}/{part}")]
        return sorted(found)

    def exists(self, p: str) -> bool:
        real = self.confined(p, follow_last=False)
        return real is not None and os.path.lexists(real)

    def link_name(self, p: str) -> Optional[str]:
        """Basename of a symlink's target (``device/driver`` -> ``mlx5_core``)."""
        real = self.confined(p, follow_last=False)
        if real is None:
            return None
        try:
            return os.path.basename(os.readlink(real))
        except OSError:
            return None

    # -- processes and libraries (live only) ----------------------------------------------
    def which(self, name: str) -> Optional[str]:
        if not self.live:
            return None
        import shutil  # start-up: a warm detect (the profile cache) looks nothing up on PATH
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def load_library(self, name: str):
        """``ctypes.CDLL(name)`` as the loader finds it, or None when it cannot load (live
        only: below a sysroot nothing is loaded)."""
        if not self.live:
            return None
        import ctypes  # start-up: only a GPU probe loads a library
        try:
            return ctypes.CDLL(name)
        except OSError:
            return None

    def note_child(self, depends_on: Sequence[str]) -> None:
        """A child process's answer, maybe from the probe cache, depends on these files (its
        executable first). Nothing to do here; a recording root keys them as if it ran."""

    def run(self, argv: Sequence[str], timeout: float = PROBE_TIMEOUT_S,
            extra_env: Optional[Dict[str, str]] = None) -> Optional[str]:
        """stdout+stderr of a bounded child process, or None if it could not answer."""
        if not self.live:
            return None
        import subprocess  # start-up: a warm detect (the profile cache) starts no process
        env = dict(self._environ)
        env["LC_ALL"] = "C"
        if extra_env:
            env.update(extra_env)
        try:
            proc = subprocess.run(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, timeout=timeout, env=env)
        except (OSError, subprocess.SubprocessError):
            return None
        out = proc.stdout.decode("utf-8", "replace")
        return out if out.strip() else None

    # -- metadata (added for the runtime facts: starter-suid, /dev/fuse, executables) -----
    def stat(self, p: str, follow_last: bool = True) -> Optional[os.stat_result]:
        """``os.stat`` of ``p`` confined like a read (``follow_last=False``: ``lstat``); None if
        absent or unreachable. Nothing is opened, so a FIFO or a device is safe to stat."""
        real = self.confined(p, follow_last)
        if real is None:
            return None
        try:
            return os.stat(real) if follow_last else os.lstat(real)
        except (OSError, ValueError):
            return None

    def access(self, p: str, mode: int) -> Optional[bool]:
        """May this process open ``p`` with ``mode`` (``os.R_OK | os.W_OK``)? Live only: below
        a sysroot the answer is another machine's, so None (unknown)."""
        if not self.live:
            return None
        try:
            return os.access(p, mode)
        except (OSError, ValueError):
            return None
