"""Knowledge kept as data: ``compat/data/*.json`` loaded once, on first use."""
from __future__ import annotations

import functools
import json
import os
from typing import Any, Dict

DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data")


@functools.lru_cache(maxsize=None)
def load(name: str) -> Dict[str, Any]:
    with open(os.path.join(DATA_DIR, name + ".json"), encoding="utf-8") as fh:
        return json.load(fh)
