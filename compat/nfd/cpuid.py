"""CPU flag names between Linux/archspec spelling and NFD's ``cpu.cpuid`` spelling
(``compat/data/nfd_cpuid.json``)."""
from __future__ import annotations

import functools

from compat.vocab.data import load

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict


@functools.lru_cache(maxsize=None)
def _tables():
    to_nfd: Dict[str, str] = dict(load("nfd_cpuid")["linux_to_nfd"])
    return to_nfd, {v: k for k, v in to_nfd.items()}


def cpuid_name(flag: str) -> str:
    """The NFD ``cpu.cpuid`` name of a Linux/archspec flag (``sse4_2`` -> ``SSE42``)."""
    return _tables()[0].get(flag, flag.replace("_", "").upper())


def linux_flag(name: str) -> str:
    """The Linux/archspec flag of an NFD ``cpu.cpuid`` name (``SSE42`` -> ``sse4_2``); names
    outside the table are lower-cased."""
    return _tables()[1].get(name, name.lower())
