"""Parse and check manifests and indexes: structure errors are bad input (exit 2)."""
from __future__ import annotations

import json
from typing import Any, Dict, Optional, Tuple

from compat.errors import BadInput
from compat.oci import media
from compat.oci.digest import is_digest

def parse(data: bytes, what: str, content_type: Optional[str] = None) -> Tuple[str, Dict[str, Any]]:
    """(media type, document) of an index or image manifest; anything else is bad input."""
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what}: not JSON ({exc})") from None
    if not isinstance(doc, dict):
        raise BadInput(f"{what}: expected a JSON object")
    mt = doc.get("mediaType") or (content_type or "").split(";")[0].strip()
    if not mt:
        mt = media.OCI_INDEX if "manifests" in doc else media.OCI_MANIFEST if "config" in doc else ""
    if mt in media.INDEXES:
        check_index(doc, what)
    elif mt in media.IMAGE_MANIFESTS:
        if not isinstance(doc.get("config"), dict) or not isinstance(doc.get("layers", []), list):
            raise BadInput(f"{what}: image manifest without a config descriptor")
    else:
        raise BadInput(f"{what}: media type {mt or 'missing'!r} is neither an image index nor a manifest")
    return mt, doc


def check_index(doc: Dict[str, Any], what: str) -> None:
    if doc.get("schemaVersion") != 2:
        raise BadInput(f"{what}: schemaVersion must be 2")
    manifests = doc.get("manifests")
    if not isinstance(manifests, list):
        raise BadInput(f"{what}: 'manifests' must be a list")
    for i, d in enumerate(manifests):
        where = f"{what}: manifests[{i}]"
        if not isinstance(d, dict):
            raise BadInput(f"{where} is not an object")
        if not is_digest(d.get("digest")):
            raise BadInput(f"{where}: missing or malformed digest")
        if not isinstance(d.get("mediaType"), str):
            raise BadInput(f"{where}: missing mediaType")
        if not isinstance(d.get("size"), int) or d["size"] < 0:
            raise BadInput(f"{where}: missing or negative size")
        if "platform" in d and not isinstance(d["platform"], dict):
            raise BadInput(f"{where}: platform must be an object")
        if "annotations" in d and not (isinstance(d["annotations"], dict)
                                       and all(isinstance(k, str) for k in d["annotations"])):
            raise BadInput(f"{where}: annotations must be an object of strings")
