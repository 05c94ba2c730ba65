"""Reading REF arguments with the common slips caught before any network: a local path given
without ``oci:`` (``compat select fixtures/demo``), a file name that does not exist
(``compat validate /nonexistent.json``). Rules in spec/cli.md, "REF"."""
from __future__ import annotations

import os

from compat.errors import BadInput, printable
from compat.oci.reference import parse

#: names that are files, never Docker Hub repositories
FILE_SUFFIXES = (".json", ".yaml", ".yml", ".sif")
#: the schemes a registry reference may carry (oras://: what compat prints for a SIF child)
SCHEMES = ("docker://", "oras://")


def _explicit_registry(text: str) -> bool:
    first, sep, _ = text.partition("/")
    return bool(sep) and ("." in first or ":" in first or first == "localhost")


def _path_like(text: str) -> bool:
    """Text no registry reference can be: an absolute or relative path, or a file name."""
    return text.startswith(("/", "./", "../", "~")) or text in (".", "..") or \
        (not _explicit_registry(text) and text.lower().endswith(FILE_SUFFIXES))


def _is_layout(path: str) -> bool:
    return os.path.isfile(os.path.join(path, "oci-layout"))


def _kind(path: str) -> str:
    if os.path.isfile(path):
        return "file"
    kind = "directory" if os.path.isdir(path) else "special file (not a regular file)"
    return kind + (", not a SIF file (a SIF variant is a regular file)" if path.lower().endswith(".sif") else "")


def source(text: str):
    """The Reference an image argument names; BadInput for a local path that is not ``oci:``,
    or a scheme compat does not read (``https://``)."""
    if not text.startswith(("oci:",) + SCHEMES):
        path = os.path.expanduser(text)
        shown = printable(text, 160)
        scheme, sep, _ = text.partition("://")
        if sep and "/" not in scheme:
            raise BadInput(f"{shown}: compat reads registry references (plain, docker:// or oras://) "
                           f"and oci:DIR layouts, not {printable(scheme, 40)}://")
        if _is_layout(path):
            raise BadInput(f"{shown} is a local OCI layout: did you mean oci:{shown}?")
        if os.path.exists(path) and (_path_like(text) or not _explicit_registry(text)):
            hub = "" if _path_like(text) else f"; write the registry, e.g. docker.io/{shown}, to mean Docker Hub"
            raise BadInput(f"{shown} is a local {_kind(path)}, not an image reference (oci:DIR for an OCI layout{hub})")
        if _path_like(text):
            raise BadInput(f"{shown}: no such file or directory")
    return parse(text)
