"""compat: pick the right image variant for an HPC host.

Python API for schedulers (nothing is imported, no network or process started until called)::

    import compat
    host = compat.detect()                         # or compat.detect(sysroot=..., assume={...})
    sel = compat.select("registry.example.org/app:1.0", host=host)
    print(sel.reference)                           # registry.example.org/app@sha256:...
    ranked = compat.rank(index_dict, host)         # when you already hold the index
"""
import importlib

__version__ = "0.1.0"

__all__ = ["detect", "load_host", "select", "resolve", "rank", "Host", "Selection", "Candidate", "plan", "__version__"]

_LAZY = {
    "detect": ("compat.host", "detect"),
    "load_host": ("compat.host", "load_host"),
    "Host": ("compat.host.profile", "Host"),
    "select": ("compat.api", "select"),
    "resolve": ("compat.api", "resolve"),
    "rank": ("compat.api", "rank"),
    "Selection": ("compat.api", "Selection"),
    "Candidate": ("compat.match.rank", "Candidate"),
    "plan": ("compat.plan", "plan"),
}


def __getattr__(name):
    if name == "errors":
        return importlib.import_module("compat.errors")
    if name in _LAZY:
        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'compat' has no attribute {name!r}")
