"""Wall-clock timing of processes, each command interleaved with its peer (A B, B A, ...) so
that a change in the machine's load falls on both; medians and minimums in milliseconds."""
from __future__ import annotations

import re
import statistics
import subprocess
import time
from typing import Dict, List, NamedTuple, Tuple


class Timed(NamedTuple):
    median: float
    best: float
    runs: int


def summary(samples: List[float]) -> Timed:
    return Timed(statistics.median(samples), min(samples), len(samples))


def once(argv: List[str], env: Dict[str, str]) -> float:
    """Milliseconds of one run; the command must succeed."""
    t = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=True)
    return (time.perf_counter() - t) * 1000


def interleaved(commands: Dict[str, List[str]], runs: int, env: Dict[str, str], warmup: int = 2) -> Dict[str, Timed]:
    """Every command ``runs`` times after ``warmup`` rounds, in rounds whose order alternates."""
    names = list(commands)
    samples: Dict[str, List[float]] = {n: [] for n in names}
    for i in range(warmup + runs):
        for name in (names if i % 2 == 0 else names[::-1]):
            ms = once(commands[name], env)
            if i >= warmup:
                samples[name].append(ms)
    return {n: summary(s) for n, s in samples.items()}


_IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)")


def imports(argv: List[str], env: Dict[str, str], skip=frozenset()) -> Tuple[float, List[Tuple[str, float]]]:
    """(wall ms of the run, [(module, cumulative ms)] costliest first) of the modules the
    program itself imports (not those in ``skip``), in one run of ``argv`` with ``-X importtime``
    (through PYTHONPROFILEIMPORTTIME)."""
    t = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, text=True, env=dict(env, PYTHONPROFILEIMPORTTIME="1"))
    wall = (time.perf_counter() - t) * 1000
    found = [(m.group(4), int(m.group(2)) / 1000) for m in _IMPORT_LINE.finditer(proc.stderr)
             if len(m.group(3)) == 1 and m.group(4) not in skip]   # one space: imported by the program
    return wall, sorted(found, key=lambda f: -f[1])
