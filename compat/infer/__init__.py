"""Inference: propose annotations from what an image's files contain (ELF notes, recorded
compiler flags, CUDA fat binaries, dynamic dependencies, library version strings).
Nothing from the image is executed."""
from __future__ import annotations

import time

from compat.infer.propose import propose
from compat.infer.scan import layers_of, scan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional


def infer_image(source, digest: str, manifest: Dict, scopes: Optional[List[str]] = None,
                label: str = "") -> Dict:
    """Proposals for one image manifest read through ``source`` (layout or registry)."""
    t = time.perf_counter()
    files = scan(source, manifest, scopes, label or digest[:19])
    result = propose(files)
    result["files"] = len(files)
    result["bytes"] = sum(layer.size for layer in layers_of(manifest))
    result["seconds"] = time.perf_counter() - t
    return result
