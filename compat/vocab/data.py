"""Knowledge kept as data: ``compat/data/*.json`` loaded once, on first use."""
from __future__ import annotations

import functools
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Tuple

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


@functools.lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    with open(os.path.join(DATA_DIR, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)


def _table(name: str, key: str) -> Dict[str, Any]:
    return {k: v for k, v in load(name)[key].items() if not k.startswith("_")}


# -- accessors: the one place code reads each table ---------------------------------------------

@functools.lru_cache(maxsize=None)
def arch_aliases() -> Dict[str, str]:
    """containerd's architecture spellings -> the OCI name (``x86_64`` -> ``amd64``)."""
    return _table("architectures", "aliases")


@functools.lru_cache(maxsize=None)
def arch_families() -> Dict[str, str]:
    """OCI architecture -> archspec family (``amd64`` -> ``x86_64``)."""
    return _table("architectures", "families")


@functools.lru_cache(maxsize=None)
def machine_archs() -> Dict[str, str]:
    """``uname -m`` / archspec family, or an OCI name -> the OCI architecture."""
    out = {oci: oci for oci in arch_families()}
    out.update({family: oci for oci, family in arch_families().items()})
    return out


@functools.lru_cache(maxsize=None)
def mpi_sonames() -> Dict[str, str]:
    """MPI library soname -> the ABI it promises, in the order the library probe tries them."""
    return _table("mpi", "sonames")


@functools.lru_cache(maxsize=None)
def gpu_pci() -> Dict[str, Dict[str, Any]]:
    """GPU vendor -> {"vendor": PCI vendor ID (4 hex digits), "classes": [PCI classes]}."""
    return _table("pci", "gpus")


@functools.lru_cache(maxsize=None)
def gpu_pci_classes() -> Tuple[str, ...]:
    """Every PCI class under which a GPU appears (4 hex digits), in table order."""
    return tuple(dict.fromkeys(c for v in gpu_pci().values() for c in v["classes"]))


@functools.lru_cache(maxsize=None)
def fabric_pci() -> Dict[str, Dict[str, str]]:
    """Fabric -> {"vendor", "class"} of the HCA that shows it (InfiniBand, RoCE)."""
    return _table("pci", "fabrics")


@functools.lru_cache(maxsize=None)
def fabric_drivers(fabric: str) -> Tuple[str, ...]:
    """The kernel drivers of a fabric's NICs (``fabrics.json``)."""
    return tuple(load("fabrics")["fabrics"].get(fabric, {}).get("drivers", ()))


@functools.lru_cache(maxsize=None)
def nfd_cpu_vendors() -> Dict[str, str]:
    """compat's CPU vendor name -> NFD's ``cpu.model`` ``vendor_id``."""
    return _table("cpu_vendors", "nfd")


@functools.lru_cache(maxsize=None)
def slurm_features() -> Dict[str, Any]:
    """Slurm feature spellings (spec/plan.md): ``mpi`` and ``fabric`` names, the ``pmi`` list."""
    return {k: v for k, v in load("slurm_features").items() if not k.startswith("_")}


@functools.lru_cache(maxsize=None)
def runtimes() -> Dict[str, Dict[str, Any]]:
    """Container runtime name -> {"executables", "version_args", "runs" (oci, sif), and for
    Apptainer/Singularity "config" and "starter_suid" paths}, in the order a host is probed."""
    return _table("runtimes", "runtimes")


@functools.lru_cache(maxsize=None)
def fuse_helpers() -> Tuple[str, ...]:
    """The FUSE programs unprivileged runtimes mount images with, looked for on PATH."""
    return tuple(load("runtimes")["fuse_helpers"])


@functools.lru_cache(maxsize=None)
def runtime_files() -> Dict[str, Any]:
    """What a sysroot's files say about runtimes (nothing runs there): ``bin_dirs``, dpkg
    ``packages`` per runtime, a script's ``version_variable``, apptainer.conf ``config_defaults``."""
    table = load("runtimes")
    return {k: table[k] for k in ("bin_dirs", "packages", "version_variable", "config_defaults")}
