"""HPC community keys (``org.supercontainers.*``, compspec's ``io.archspec.cpu.*``,
``mpi.*``, ``hardware.gpu.*``) read as aliases of compat's keys (``compat/data/aliases.json``).

An alias only fills a compat key the descriptor does not set itself. A value the table maps to
``null`` (``hardware.gpu.available=yes``: a GPU, but of which vendor?) cannot be expressed and
is reported as a note rather than guessed.
"""
from __future__ import annotations


from compat.vocab.data import load as load_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Mapping, Tuple

PREFIX = "org.hpc-compat."


def normalise(annotations: Mapping[str, str]) -> Tuple[Dict[str, str], List[str]]:
    """(annotations with compat keys filled from aliases, notes about aliases not used)."""
    table = load_data("aliases")
    keys, implies, values = table["keys"], table["implies"], table["values"]
    out = dict(annotations)
    notes: List[str] = []
    for alias, target in keys.items():
        if alias not in annotations:
            continue
        full = PREFIX + target
        raw = str(annotations[alias])
        mapping = values.get(target)
        value = raw
        if mapping is not None and raw.strip().lower() in mapping:
            value = mapping[raw.strip().lower()]
            if value is None:
                notes.append(f"{alias}={raw}: no compat equivalent (ignored)")
                continue
        if full in out:
            if full not in annotations and out[full] != value:
                notes.append(f"{alias}={raw}: ignored, another alias already set {full}")
            continue
        out[full] = value
        for k, v in implies.get(alias, {}).items():
            out.setdefault(PREFIX + k, v)
    return out, notes
