"""Where probes look: the running machine, or another machine's files below a sysroot.

Every probe goes through a :class:`Root`.  Reading never raises: a missing, empty or
unreadable file is ``None`` (unknown), as NFD treats its host path.  Under a sysroot
nothing is executed and the environment is not read: a sysroot is another machine's files.
"""
from __future__ import annotations

import os
from typing import Dict, List, Mapping, Optional, Sequence

#: Wall-clock bound of one child process started by a probe.
PROBE_TIMEOUT_S = 2.0


class Root:
    def __init__(self, sysroot: Optional[str] = None, env: Optional[Mapping[str, str]] = None):
        self.sysroot = os.path.abspath(sysroot) if sysroot else None
        if env is not None:
            self.env: Mapping[str, str] = env
        else:
            self.env = {} if self.sysroot else os.environ

    @property
    def live(self) -> bool:
        """True when probing the running machine (processes may be started)."""
        return self.sysroot is None

    def path(self, p: str) -> str:
        if self.sysroot is None:
            return p
        return os.path.join(self.sysroot, p.lstrip("/"))

    def read(self, p: str, limit: int = 1 << 20) -> Optional[str]:
        """The file's text (stripped of a trailing newline), or None if absent/unreadable."""
        try:
            with open(self.path(p), "rb") as fh:
                data = fh.read(limit)
        except (OSError, ValueError):
            return None
        text = data.decode("utf-8", "replace").rstrip("\n")
        return text if text.strip() else None

    def listdir(self, p: str) -> List[str]:
        try:
            return sorted(os.listdir(self.path(p)))
        except OSError:
            return []

    def exists(self, p: str) -> bool:
        return os.path.lexists(self.path(p))

    def link_name(self, p: str) -> Optional[str]:
        """Basename of a symlink's target (``device/driver`` -> ``mlx5_core``)."""
        try:
            return os.path.basename(os.readlink(self.path(p)))
        except OSError:
            return None

    # -- processes (live only) -----------------------------------------------------------
    def which(self, name: str) -> Optional[str]:
        if not self.live:
            return None
        import shutil
        return shutil.which(name, path=self.env.get("PATH", os.defpath))

    def run(self, argv: Sequence[str], timeout: float = PROBE_TIMEOUT_S,
            extra_env: Optional[Dict[str, str]] = None) -> Optional[str]:
        """stdout+stderr of a bounded child process, or None if it could not answer."""
        if not self.live:
            return None
        import subprocess
        env = dict(self.env)
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
