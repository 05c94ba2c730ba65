"""Host probes: what machine are we on (or what machine do these files describe)?

``detect()`` runs every probe below one :class:`~compat.host.root.Root`, records where
each fact came from, then applies ``--assume`` overrides; a warm ``detect()`` returns the
cached profile instead when nothing that decides it has changed (``profile_cache.py``).
No probe may crash detection: a probe that fails leaves its fact unknown and says why in
``sources``.
"""
from __future__ import annotations

import os

from compat import io, limits
from compat.errors import BadInput, printable
from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host, Libfabric, Rootless, Runtime, Ucx, known_runtimes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Iterable, Mapping, Optional, Union

__all__ = ["detect", "Host", "OS", "CPU", "GPU", "MPI", "Fabric", "Libfabric", "Ucx", "Runtime", "Rootless", "load",
           "load_host", "from_data"]


def detect(sysroot: Optional[str] = None,
           assume: Union[None, Mapping[str, str], Iterable[str]] = None,
           probe_tools: bool = False, env: Optional[Mapping[str, str]] = None) -> Host:
    """Detect the host (or the machine whose files lie below ``sysroot``).

    ``assume`` overrides facts (``{"gpu.cc": "9.0"}`` or ``["gpu.cc=9.0"]``);
    ``probe_tools`` also asks ``fi_info`` for libfabric providers (adds 100-300 ms).
    """
    # start-up: a profile file, or compat.rank with a Host, loads no probe, cache or sysroot reader
    from compat.host.profile_cache import detect as cached_or_probed
    return cached_or_probed(sysroot, assume, probe_tools, env)


def load(path, assume: Union[None, Mapping[str, str], Iterable[str]] = None,
         what: Optional[str] = None) -> Host:
    """``--host FILE``: load a saved profile (``compat detect --json > node.json``), then
    apply ``assume``. Errors name the file as ``what`` (default ``--host PATH``)."""
    path = _path_argument(path, "load")
    what = what or f"--host {path}"
    data = io.load_json(io.read_file(path, limits.HOST_FILE_BYTES, what), what)
    return from_data(data, what, assume)


def load_host(path, assume: Union[None, Mapping[str, str], Iterable[str]] = None) -> Host:
    """The Python API's ``compat.load_host(path)``: as :func:`load`, errors naming the file
    as ``host profile PATH``."""
    path = _path_argument(path, "load_host")
    return load(path, assume, what=f"host profile {path}")


def from_data(data, what: str, assume: Union[None, Mapping[str, str], Iterable[str]] = None) -> Host:
    """A parsed profile -> Host: checked against ``schemas/host.schema.json`` (bounds
    included) first, so nothing downstream sees a wrong type; then ``assume`` applied."""
    # start-up: the schema interpreter loads only for a profile file
    from compat.schema import validate_host

    problem = validate_host(data)
    if problem:
        raise BadInput(printable(f"{what}: {problem}", 400))
    host = known_runtimes(Host.from_dict(data))
    if not assume:
        return host
    # start-up: the --assume grammar loads only with --assume
    from compat.host import assume as _assume
    return _assume.apply_checked(host, _assume.parse(assume))


def _path_argument(path, who: str) -> str:
    """A profile path: ``str`` or ``os.PathLike`` (bytes paths too), else TypeError."""
    if isinstance(path, (str, bytes, os.PathLike)):
        value = os.fspath(path)
        return os.fsdecode(value) if isinstance(value, bytes) else value
    raise TypeError(f"{who}: expected a path (str or os.PathLike) to a host profile, "
                    f"got {type(path).__name__}")
