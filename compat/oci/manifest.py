"""Parse and check manifests and indexes: structure errors are bad input (exit 2)."""
from __future__ import annotations

import json

from compat.errors import BadInput, printable
from compat.limits import NUMBER_DIGITS
from compat.oci import media
from compat.oci.digest import DIGEST_RE
from compat.oci.platform import problems as _platform_problems

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple


def _bounded_int(text: str):
    """A JSON integer; one of more than limits.NUMBER_DIGITS digits stays text, which the
    descriptor check reports (Python refuses to convert 4,300+ digits at all)."""
    return int(text) if len(text) <= NUMBER_DIGITS else text


def parse(data: bytes, what: str, content_type: Optional[str] = None,
          descriptors: bool = False) -> Tuple[str, Dict[str, Any]]:
    """(media type, document) of an index or image manifest; anything else is bad input.
    ``descriptors``: also refuse an index with a malformed descriptor (:func:`check_index`)."""
    try:
        doc = json.loads(data, parse_int=_bounded_int)
    except RecursionError:
        raise BadInput(f"{what}: nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{what}: expected a JSON object")
    mt = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
    if not mt:
        mt = media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST if "config" in doc else ""
    if mt in media.INDEXES:
        check_index(doc, what, descriptors)
    elif mt in media.IMAGE_MANIFESTS:
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers", []), list):
            raise BadInput(f"{what}: image manifest without a config descriptor")
    else:
        raise BadInput(f"{what}: media type {mt or 'missing'!r} is neither an image index nor a manifest")
    return mt, doc


def check_index(doc: Dict[str, Any], what: str, descriptors: bool = True) -> None:
    """The index's own structure (schemaVersion, ``manifests`` a list): bad input when wrong.
    With ``descriptors`` (validate, annotate, a layout's index.json) also the first
    :func:`descriptor_problems`; without (selection), a malformed descriptor is left to the
    ranking, which excludes that candidate with its reason and ranks the rest."""
    if doc.get("schemaVersion") != 2:
        raise BadInput(f"{what}: schemaVersion must be 2")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise BadInput(f"{what}: 'manifests' must be a list")
    if descriptors:
        for i, d in enumerate(manifests):
            problems = descriptor_problems(d)
            if problems:
                raise BadInput(f"{what}: manifests[{i}]: {problems[0]}")


def descriptor_problems(desc: Any, platform_problems: Optional[List[str]] = None) -> List[str]:
    """Every structural problem of one descriptor of an index (types, digest, size, platform
    grammar, annotations): [] when it is well formed. The one check both the ranking (which
    excludes such a candidate with the first problem as its reason) and ``compat validate`` use.
    ``platform_problems``: what :func:`compat.oci.platform.problems` says of this descriptor's
    platform, when the caller knows it already (the ranking remembers it per platform)."""
    if not isinstance(desc, dict):
        return [f"is not an object ({type(desc).__name__})"]
    out = []
    digest = desc.get("digest")
    if digest.__class__ is not str or not DIGEST_RE.match(digest):
        out.append("missing or malformed digest")
    if desc.get("mediaType").__class__ is not str:
        out.append("missing mediaType")
    size = desc.get("size")
    if size.__class__ is not int or size < 0:
        out.append("missing or negative size")
    if "artifactType" in desc and desc["artifactType"].__class__ is not str:
        out.append("artifactType must be a string")
    if "platform" in desc:
        out += platform_problems if platform_problems is not None else _platform_problems(desc["platform"])
    if "annotations" in desc:
        ann = desc["annotations"]
        if ann.__class__ is not dict or not _ONLY_STR.issuperset(map(type, ann)) or \
                not _ONLY_STR.issuperset(map(type, ann.values())):
            out.append("annotations must be an object of strings")
    return out


_ONLY_STR = frozenset([str])


def not_image_reason(desc: Any) -> Optional[str]:
    """Why an entry of an index is not an image to select (an attestation, an artifact, a
    media type that is no manifest); None when it is one (or is no object: see
    :func:`descriptor_problems`)."""
    if not isinstance(desc, dict):
        return None
    ann = desc.get("annotations") if isinstance(desc.get("annotations"), dict) else {}
    plat = desc.get("platform") if isinstance(desc.get("platform"), dict) else {}
    if ann.get("vnd.docker.reference.type") == "attestation-manifest" or \
            (plat.get("os") == "unknown" and plat.get("architecture") == "unknown"):
        return "attestation or unknown/unknown entry: not an image"
    if desc.get("artifactType") and not media.is_sif(desc):   # a SIF is a candidate (spec/oci.md)
        return f"artifact ({printable(desc['artifactType'], 120)}): not an image"
    mt = desc.get("mediaType", "")
    if mt and isinstance(mt, str) and mt not in media.IMAGE_MANIFESTS and mt not in media.INDEXES:
        return f"media type {printable(mt, 120)}: not an image manifest"
    return None


def referrers_tag(digest: str) -> str:
    """The distribution-spec referrers tag schema: ``sha256-<hex>``."""
    algorithm, _, hexpart = digest.partition(":")
    return f"{algorithm[:32]}-{hexpart[:64]}"
