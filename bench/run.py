#!/usr/bin/env python3
"""compat's benchmarks (issue 13), on the installed build: print the rows and write them to
BENCHMARKS.md (everything above its "kept below" line).

Every process row runs the ``compat`` console script of a venv with ``pip install .[fast]``
(bytecode compiled; not ``./dev``'s editable install), without PYTHONDONTWRITEBYTECODE,
interleaved with its peer command (A B, B A, ... after warm-up rounds): medians, and the
ratio of the medians. The in-process rows run in that venv's python (bench/inproc.py).

Run: ./dev bench [--runs N] [--reuse-venv] [--no-write] [--only detect,select,oci,rank,infer,plan (prints only)]
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from typing import Callable, Dict, List, NamedTuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import installed  # noqa: E402
import layers  # noqa: E402
from timing import Timed, imports, interleaved  # noqa: E402

REPO = installed.REPO
DEMO = os.path.join(REPO, "fixtures", "demo")
KEPT = "<!-- bench/run.py writes everything above this line; what follows is kept as it is -->"


class Row(NamedTuple):
    what: str
    value: str
    peer: str
    ratio: str
    goal: str
    result: str


class Bench:
    """What every row needs: the run count, a cache directory, a scratch directory."""

    def __init__(self, runs: int, work: str):
        self.runs, self.work = runs, work
        self.env = installed.user_env(COMPAT_CACHE_DIR=os.path.join(work, "cache"))

    def compat(self, *args: str) -> List[str]:
        return [installed.COMPAT, *args]

    def inproc(self, *args: str) -> Dict:
        out = subprocess.run([installed.PYTHON, os.path.join(HERE, "inproc.py"), *args], capture_output=True,
                             text=True, env=self.env, cwd=self.work)
        if out.returncode != 0:
            raise SystemExit(f"bench: inproc.py {' '.join(args)} failed:\n{out.stderr[-3000:]}")
        doc = json.loads(out.stdout)
        assert doc["compat"].startswith(installed.VENV), doc["compat"]
        return doc

    def fails(self, argv: List[str]) -> str:
        """'' when ``argv`` succeeds here, else its last line on stderr (a row says so)."""
        proc = subprocess.run(argv, capture_output=True, text=True, env=self.env)
        return "" if proc.returncode == 0 else (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]

    def floor(self) -> float:
        """The installed python's start-up alone (median ms): what no command can go under."""
        return interleaved({"python": [installed.PYTHON, "-c", "pass"]}, self.runs, self.env)["python"].median


def ratio_row(what: str, mine: Timed, peer_name: str, peer: Timed, goal: float, left: Callable[[], str]) -> Row:
    r = mine.median / peer.median
    result = "met" if r <= goal else "missed: " + left()
    return Row(what, f"{mine.median:.1f} ms", f"{peer_name} {peer.median:.1f} ms", f"{r:.2f}x", f"<= {goal}x", result)


def process_left(b: Bench, argv: List[str], mine: Timed, allowed_ms: float) -> Callable[[], str]:
    """What is left of a process row: how far over, the python start-up floor, and the
    imports of the fastest of three ``-X importtime`` runs (the costliest named)."""
    def say() -> str:
        startup = {m for m, _ in imports([installed.PYTHON, "-c", "pass"], b.env)[1]}   # in the floor already
        wall, found = min((imports(argv, b.env, skip=startup) for _ in range(3)), key=lambda r: r[0])
        named = ", ".join(f"{m} {ms:.0f}" for m, ms in found[:4])
        return (f"{mine.median - allowed_ms:.0f} ms over; python start-up alone {b.floor():.0f} ms; in a {wall:.0f} ms "
                f"run, imports took {sum(ms for _, ms in found):.0f} ms ({named})")
    return say


def rows_detect(b: Bench) -> List[Row]:
    argv = b.compat("detect", "--json")
    peer = [installed.PYTHON, "-c", "import archspec.cpu; archspec.cpu.host()"]
    t = interleaved({"compat": argv, "archspec": peer}, b.runs, b.env)
    return [ratio_row("`compat detect --json` (warm caches) / `python -c \"import archspec.cpu; archspec.cpu.host()\"`",
                      t["compat"], "archspec", t["archspec"], 1.0,
                      process_left(b, argv, t["compat"], t["archspec"].median))]


def rows_select_registry(b: Bench) -> List[Row]:
    sys.path.insert(0, os.path.join(REPO, "tests"))
    from registry_harness import DISTRIBUTION, RunningRegistry, push_layout
    if not DISTRIBUTION or not shutil.which("skopeo"):
        return [Row("`compat select REF` / `skopeo inspect --raw`", "-", "-", "-", "<= 2x",
                    "not run: needs Debian's docker-registry and skopeo")]
    reg = RunningRegistry(os.path.join(b.work, "registry"))
    try:
        push_layout(DEMO, reg.host, "hpc/lammps", "bench")
        ref = f"{reg.host}/hpc/lammps:bench"
        cmds = {"skopeo": ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                "select": b.compat("select", ref), "plain": b.compat("select", ref, "--plain-http")}
        failed = {name: b.fails(argv) for name, argv in cmds.items()}
        t = interleaved({n: argv for n, argv in cmds.items() if not failed[n]}, b.runs, b.env)
        rows = []
        for name, label in (("select", "REF"), ("plain", "REF --plain-http")):
            what = f"`compat select {label}` (warm caches, loopback registry) / `skopeo inspect --raw`"
            if failed[name] or failed["skopeo"]:
                rows.append(Row(what, "-", "-", "-", "<= 2.0x", f"missed: fails: {failed[name] or failed['skopeo']}"))
                continue
            rows.append(ratio_row(what, t[name], "skopeo", t["skopeo"], 2.0,
                                  process_left(b, cmds[name], t[name], 2.0 * t["skopeo"].median)))
        return rows
    finally:
        reg.stop()


def node_json(b: Bench) -> str:
    path = os.path.join(b.work, "node.json")
    with open(path, "w") as fh:
        subprocess.run(b.compat("detect", "--json"), stdout=fh, env=b.env, check=True)
    return path


def rows_select_oci(b: Bench) -> List[Row]:
    if not shutil.which("skopeo"):
        return [Row("`compat select oci:DIR` / `skopeo inspect --raw oci:DIR`", "-", "-", "-", "<= 1.5x",
                    "not run: needs skopeo")]
    argv = b.compat("select", f"oci:{DEMO}", "--host", node_json(b), "--no-referrers")
    t = interleaved({"select": argv, "skopeo": ["skopeo", "inspect", "--raw", f"oci:{DEMO}"]}, b.runs, b.env)
    return [ratio_row("`compat select oci:DIR --host node.json --no-referrers` / `skopeo inspect --raw oci:DIR`",
                      t["select"], "skopeo", t["skopeo"], 1.5,
                      process_left(b, argv, t["select"], 1.5 * t["skopeo"].median))]


def rows_rank(b: Bench) -> List[Row]:
    doc = b.inproc("rank", str(max(b.runs, 31)))
    goal = 60.0
    left = "; ".join(f"{f} {ms} ms" for f, ms in doc["top"])
    result = "met" if doc["median_ms"] <= goal else \
        f"missed: {doc['median_ms'] - goal:.0f} ms over; most time (one cProfile run) in: {left}"
    return [Row(f"`compat.rank`, 10,000 descriptors ({doc['compatible']} compatible), in process",
                f"{doc['median_ms']:.1f} ms (best {doc['best_ms']:.1f})", "-", "-", f"<= {goal:.0f} ms", result)]


def rows_infer(b: Bench) -> List[Row]:
    made = layers.library_tar()
    if made is None:
        return [Row("`annotate --infer` scan", "-", "-", "-", ">= 300 MB/s", f"not run: no {layers.LIBDIR}")]
    tar, content = made
    root = os.path.join(b.work, "layers")
    made_for = {how: layers.layout(root, how, tar, content) for how in ("gzip", "zstd")}
    rows = []
    for how, zlib_only, label in (("gzip", True, "gzip layer, zlib inflate (`pip install .`)"),
                                  ("gzip", False, "gzip layer, isal inflate (`pip install .[fast]`)"),
                                  ("zstd", False, "zstd layer (zstandard)")):
        if made_for[how] is None:
            rows.append(Row(f"`annotate --infer`, {label}", "-", "-", "-", ">= 300 MB/s", "not run: no zstd here"))
            continue
        doc = b.inproc("infer", made_for[how], "5", *(["--zlib"] if zlib_only else []))
        rate, best = doc["content_mb"] / doc["median_s"], doc["content_mb"] / doc["best_s"]
        per_cpu = doc["content_mb"] / doc["cpu_s"]
        alone = doc["content_mb"] / doc["decompress_s"]
        result = "met" if rate >= 300 else (
            f"missed: decompression alone ({doc['codec']}, digest included) runs at {alone:.0f} MB/s; "
            f"tar, ELF reading and copies take the rest")
        rows.append(Row(f"`annotate --infer`, {doc['content_mb']:.0f} MB of shared libraries ({doc['files']} ELF "
                        f"files), {label}, {doc['layer_mb']:.0f} MB layer",
                        f"{rate:.0f} MB/s (best {best:.0f}; {per_cpu:.0f} per CPU second)", "-", "-", ">= 300 MB/s",
                        result))
    return rows


def rows_plan(b: Bench) -> List[Row]:
    site = b.inproc("plan-site", os.path.join(b.work, "plan"))
    argv = b.compat("plan", site["ref"], "--nodes", site["nodes"], "--json")
    t = interleaved({"plan": argv}, max(3, b.runs // 3), b.env, warmup=1)["plan"]
    result = "met" if t.median <= 1000 else "missed: " + process_left(b, argv, t, 1000)()
    return [Row("`compat plan REF --nodes DIR --json`: 10,000 nodes (50 classes) x 100 variants",
                f"{t.median:.0f} ms", "-", "-", "<= 1000 ms", result)]


ROWS = {"detect": rows_detect, "select": rows_select_registry, "oci": rows_select_oci, "rank": rows_rank,
        "infer": rows_infer, "plan": rows_plan}


def table(rows: List[Row]) -> str:
    lines = ["| row | compat | peer | ratio | goal | result |", "|---|---:|---:|---:|---|---|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine() -> str:
    model = ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), "")
    py = subprocess.run([installed.PYTHON, "-c", "import platform; print(platform.python_version())"],
                        capture_output=True, text=True).stdout.strip()
    skopeo = subprocess.run(["skopeo", "--version"], capture_output=True, text=True).stdout.strip() \
        if shutil.which("skopeo") else "no skopeo"
    load = "load average %.1f %.1f %.1f" % os.getloadavg()
    return (f"{platform.machine()}, {model or 'unknown CPU'}, {os.cpu_count()} CPUs ({load} at the end), "
            f"{platform.platform()}; "
            f"Python {py}; {skopeo}; archspec {installed.version('archspec')}, isal {installed.version('isal')}, "
            f"zstandard {installed.version('zstandard')}")


def write(rows: List[Row], runs: int) -> None:
    path = os.path.join(REPO, "BENCHMARKS.md")
    kept = ""
    if os.path.exists(path):
        with open(path) as fh:
            text = fh.read()
        if KEPT in text:
            kept = text.split(KEPT, 1)[1]
    with open(os.path.join(HERE, "BENCHMARKS.head.md")) as fh:
        head = fh.read()
    doc = head.format(runs=runs, machine=machine(), table=table(rows))
    with open(path, "w") as fh:
        fh.write(doc.rstrip("\n") + "\n\n" + KEPT + (kept if kept.strip() else "\n"))
    print("wrote BENCHMARKS.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=21, help="runs per process command (after 2 warm-up rounds)")
    ap.add_argument("--reuse-venv", action="store_true", help="keep .bench/venv, reinstall only compat")
    ap.add_argument("--only", help="comma-separated rows (printed; BENCHMARKS.md is left): " + ",".join(ROWS))
    ap.add_argument("--no-write", action="store_true", help="print the table, leave BENCHMARKS.md")
    args = ap.parse_args()
    only = args.only.split(",") if args.only else None
    installed.build(reuse=args.reuse_venv)
    work = tempfile.mkdtemp(prefix="compat-bench-")
    try:
        bench = Bench(args.runs, work)
        rows: List[Row] = []
        for name, fn in ROWS.items():
            if only is None or name in only:
                for row in fn(bench):
                    rows.append(row)
                    print("| " + " | ".join(row) + " |", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(table(rows))
    if not args.no_write and not only:
        write(rows, args.runs)


if __name__ == "__main__":
    main()
