"""Reading REF arguments with the common slips caught before any network: a local path given
without ``oci:`` (``compat select fixtures/demo``), a file name that does not exist
(``compat validate /nonexistent.json``). Rules in spec/cli.md, "REF"."""
from __future__ import annotations

import os

from compat.errors import BadInput, printable
from compat.oci.reference import parse

#: names that are files, never Docker Hub repositories
FILE_SUFFIXES = (".json", ".yaml", ".yml")


def _explicit_registry(text: str) -> bool:
    first, sep, _ = text.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def _path_like(text: str) -> bool:
    """Text no registry reference can be: an absolute or relative path, or a file name."""
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..") or \
        (not _explicit_registry(text) and text.lower().endswith(FILE_SUFFIXES))


def _is_layout(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "oci-layout"))


def source(text: str):
    """The Reference an image argument names; BadInput for a local path that is not ``oci:``."""
    if not text.startswith(("oci:", "docker://")):
        path = os.path.expanduser(text)
        shown = printable(text, 160)
        if _is_layout(path):
            raise BadInput(f"{shown} is a local OCI layout: did you mean oci:{shown}?")
        if os.path.exists(path) and not _explicit_registry(text):
            what = "directory" if os.path.isdir(path) else "file"
            raise BadInput(f"{shown} is a local {what}, not an image reference (oci:DIR for an OCI layout; "
                           f"write the registry, e.g. docker.io/{shown}, to mean Docker Hub)")
        if _path_like(text):
            raise BadInput(f"{shown}: no such file or directory")
    return parse(text)
