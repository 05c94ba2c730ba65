#!/usr/bin/env python3
"""compat's benchmarks: print the figures and write them to BENCHMARKS.md.

1. ``compat detect --json`` wall time (median) next to ``python -c "import archspec.cpu;
   archspec.cpu.host()"`` in the same run.  Target: at most 3x.
2. ``compat select`` end to end against a real registry (distribution on 127.0.0.1), warm
   probe and manifest caches, next to ``skopeo inspect --raw`` of the same index.  Target: 3x.
3. ``compat.rank`` on a 1,000-descriptor index (in process).  Target: 20 ms.
4. ``compat plan`` end to end (a process): 10,000 node profiles in a directory (50 node
   classes) x a 100-variant index in an OCI layout.  Target: 1 s.

Run: ./dev bench   (or python bench/run.py [--runs N])
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))


def wall(argv, runs, env=None, warmup=2):
    full = dict(os.environ, **(env or {}))
    for _ in range(warmup):
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full, check=True)
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=full, check=True)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), min(times)


def verdict(value, target, unit):
    state = "target met" if value <= target else "**target missed**"
    return f"{value:.2f}{unit}; target <= {target}{unit.strip() if unit.startswith(' ') else unit}: {state}"


def bench_detect(runs, env):
    base = wall([sys.executable, "-c", "import archspec.cpu; archspec.cpu.host()"], runs)
    det = wall([sys.executable, "-m", "compat", "detect", "--json"], runs, env)
    return base, det


def bench_select(runs, env):
    from registry_harness import DISTRIBUTION, RunningRegistry, push_layout
    if not DISTRIBUTION or not shutil.which("skopeo"):
        return None
    tmp = tempfile.mkdtemp(prefix="compat-bench-")
    reg = RunningRegistry(os.path.join(tmp, "reg"))
    try:
        push_layout(os.path.join(REPO, "fixtures", "demo"), reg.host, "hpc/lammps", "bench")
        ref = f"{reg.host}/hpc/lammps:bench"
        host_file = os.path.join(tmp, "node.json")
        with open(host_file, "w") as fh:
            fh.write(subprocess.run([sys.executable, "-m", "compat", "detect", "--json"], env=dict(os.environ, **env),
                                    capture_output=True, text=True, check=True).stdout)
        skopeo = wall(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], runs)
        sel = wall([sys.executable, "-m", "compat", "select", ref, "--plain-http"], runs, env)
        sel_host = wall([sys.executable, "-m", "compat", "select", ref, "--plain-http", "--host", host_file], runs, env)
        sel_bare = wall([sys.executable, "-m", "compat", "select", ref, "--plain-http", "--host", host_file,
                         "--no-referrers"], runs, env)
        return skopeo, sel, sel_host, sel_bare
    finally:
        reg.stop()
        shutil.rmtree(tmp, ignore_errors=True)


def bench_rank(runs):
    from compat.host.assume import cpu_from_target
    from compat.host.profile import GPU, MPI, OS, Fabric, Host
    from compat.match.rank import rank

    cpu = cpu_from_target("zen4")
    host = Host(os=OS(arch="amd64", variant="v4", kernel="5.14.0", glibc="2.34"), cpu=cpu,
                gpus=(GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4"),),
                fabrics=(Fabric("infiniband"),), mpi=(MPI("openmpi", "4.1.6", "openmpi"),), pmi=("pmix",))
    targets = ["x86_64_v2", "x86_64_v3", "x86_64_v4", "zen2", "zen3", "zen4", "icelake", "sapphirerapids",
               "skylake_avx512", "haswell"]
    manifests = []
    for i in range(1000):
        ann = {"org.hpc-compat.cpu.target": targets[i % len(targets)],
               "org.hpc-compat.description": f"variant {i}"}
        if i % 3 == 0:
            ann["org.hpc-compat.gpu.cuda.version"] = ["11.8", "12.2", "12.4", "12.6"][i % 4]
            ann["org.hpc-compat.gpu.cuda.arch"] = ["sm_80,sm_90", "sm_90", "compute_80", "sm_70,sm_80"][i % 4]
        if i % 5 == 0:
            ann.update({"org.hpc-compat.mpi.implementation": "openmpi", "org.hpc-compat.mpi.version": "4.1",
                        "org.hpc-compat.mpi.mode": "hybrid", "org.hpc-compat.fabric": "infiniband",
                        "org.hpc-compat.fabric.providers": "verbs"})
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(), "size": 500,
                          "platform": {"os": "linux", "architecture": ["amd64", "arm64"][i % 7 == 0]},
                          "annotations": ann})
    index = {"schemaVersion": 2, "manifests": manifests}
    rank(index, host)  # warm: archspec and data tables loaded once per process
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        r = rank(index, host)
        times.append((time.perf_counter() - t) * 1000)
    assert r.best is not None
    return statistics.median(times), min(times), len(r.compatible)


def plan_site(root):
    """10,000 node profiles (50 node types: CPU target x GPU x MPI) in a directory and an OCI
    layout whose index has 100 variants, for ``compat plan``."""
    import json
    from compat.host.assume import cpu_from_target
    from compat.host.profile import GPU, MPI, OS, Fabric, Host

    targets = ["haswell", "skylake_avx512", "icelake", "sapphirerapids", "zen2", "zen3", "zen4", "cascadelake",
               "broadwell", "x86_64_v3"]
    gpus = [(), (GPU("nvidia", 0, cc="8.0", driver="535.104.05", cuda="12.2"),),
            (GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4"),), (GPU("nvidia", 0, cc="7.0", driver="470.1", cuda="11.4"),),
            (GPU("nvidia", 0, cc="9.0", driver="560.28.03", cuda="12.6"),)]
    nodes = os.path.join(root, "nodes")
    os.makedirs(nodes)
    for t in range(50):
        cpu = cpu_from_target(targets[t % 10])
        host = Host(os=OS(arch="amd64", variant=f"v{cpu.x86_64_level}", kernel="5.14.0", glibc="2.34"), cpu=cpu,
                    gpus=gpus[t // 10], fabrics=(Fabric("infiniband"),), mpi=(MPI("openmpi", "4.1.6", "openmpi"),),
                    pmi=("pmix",), sources={"host": "bench"})
        text = json.dumps(host.to_dict())
        for n in range(200):
            with open(os.path.join(nodes, f"n{t:02d}{n:03d}.json"), "w") as f:
                f.write(text)
    manifests = []
    for i in range(100):
        ann = {"org.hpc-compat.cpu.target": targets[i % 10], "org.hpc-compat.description": f"variant {i}"}
        if i % 3 == 0:
            ann["org.hpc-compat.gpu.cuda.version"] = ["11.8", "12.2", "12.4", "12.6"][i % 4]
            ann["org.hpc-compat.gpu.cuda.arch"] = ["sm_80,sm_90", "sm_90", "compute_80", "sm_70,sm_80"][i % 4]
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                          "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(), "size": 500,
                          "platform": {"os": "linux", "architecture": "amd64"}, "annotations": ann})
    blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()
    digest = hashlib.sha256(blob).hexdigest()
    layout = os.path.join(root, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    with open(os.path.join(layout, "blobs", "sha256", digest), "wb") as f:
        f.write(blob)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                                      "digest": "sha256:" + digest, "size": len(blob),
                                                      "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
    return nodes, "oci:" + layout + ":1"


def bench_plan(runs, env):
    """``compat plan`` end to end (a process): 10,000 nodes in 50 classes x 100 variants."""
    root = tempfile.mkdtemp(prefix="compat-bench-plan-")
    try:
        nodes, ref = plan_site(root)
        argv = [sys.executable, "-m", "compat", "plan", ref, "--nodes", nodes, "--json"]
        out = subprocess.run(argv, capture_output=True, text=True, env=dict(os.environ, **env))
        assert out.returncode == 0 and out.stdout.count('"id": "c') == 50, out.stderr
        return wall(argv, runs, env)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def bench_infer():
    """compat annotate --infer's scanner on a real-sized image: the shared libraries of this
    machine's /usr/lib/x86_64-linux-gnu (ELF files, about 150 MB) in one gzip layer."""
    import gzip
    import io
    import tarfile
    from compat.infer import infer_image
    from compat.oci.reference import parse
    from compat.oci.source import Source

    libdir = "/usr/lib/x86_64-linux-gnu"
    if not os.path.isdir(libdir):
        return None
    tmp = tempfile.mkdtemp(prefix="compat-bench-infer-")
    try:
        raw = io.BytesIO()
        total = 0
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for name in sorted(os.listdir(libdir)):
                p = os.path.join(libdir, name)
                if not os.path.isfile(p) or os.path.islink(p) or ".so" not in name:
                    continue
                size = os.path.getsize(p)
                if total + size > 150 << 20:
                    continue
                tar.add(p, arcname="usr/lib/x86_64-linux-gnu/" + name)
                total += size
        layer = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
        os.makedirs(os.path.join(tmp, "blobs", "sha256"))
        d = "sha256:" + hashlib.sha256(layer).hexdigest()
        with open(os.path.join(tmp, "blobs", "sha256", d[7:]), "wb") as fh:
            fh.write(layer)
        with open(os.path.join(tmp, "oci-layout"), "w") as fh:
            json.dump({"imageLayoutVersion": "1.0.0"}, fh)
        with open(os.path.join(tmp, "index.json"), "w") as fh:
            json.dump({"schemaVersion": 2, "manifests": []}, fh)
        manifest = {"layers": [{"digest": d, "size": len(layer),
                                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"}]}
        src = Source(parse(f"oci:{tmp}"))
        t = time.perf_counter()
        result = infer_image(src, "sha256:" + "0" * 64, manifest)
        secs = time.perf_counter() - t
        return total / 1e6, len(layer) / 1e6, secs, result["files"]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    cache = tempfile.mkdtemp(prefix="compat-bench-cache-")
    env = {"COMPAT_CACHE_DIR": cache, "PYTHONPATH": REPO}
    rows = []
    r_med, r_min, n_ok = bench_rank(max(args.runs, 101))   # first, before the process-heavy runs; cheap, so more samples
    (b_med, b_min), (d_med, d_min) = bench_detect(args.runs, env)
    rows.append(("`python -c \"import archspec.cpu; archspec.cpu.host()\"`", b_med, b_min, ""))
    rows.append(("`compat detect --json` (warm probe cache)", d_med, d_min,
                 verdict(d_med / b_med, 3, "x archspec")))
    sel = bench_select(args.runs, env)
    if sel:
        (s_med, s_min), (c_med, c_min), (h_med, h_min), (n_med, n_min) = sel
        rows.append(("`skopeo inspect --raw` of the demo index (loopback registry)", s_med, s_min, ""))
        rows.append(("`compat select REF --plain-http` (detects the host; warm caches)", c_med, c_min,
                     verdict(c_med / s_med, 3, "x skopeo")))
        rows.append(("`compat select REF --plain-http --host node.json`", h_med, h_min,
                     verdict(h_med / s_med, 3, "x skopeo")))
        rows.append(("`compat select REF --plain-http --host node.json --no-referrers`", n_med, n_min,
                     verdict(n_med / s_med, 3, "x skopeo")))
    rows.append((f"`compat.rank` on a 1,000-descriptor index ({n_ok} compatible), in process", r_med, r_min,
                 verdict(r_med, 20, " ms")))
    p_med, p_min = bench_plan(max(3, args.runs // 3), env)
    rows.append(("`compat plan REF --nodes DIR --json`: 10,000 nodes (50 classes) x 100 variants", p_med,
                 p_min, verdict(p_med, 1000, " ms")))
    shutil.rmtree(cache, ignore_errors=True)
    inf = bench_infer()

    lines = ["| what | median ms | min ms | note |", "|---|---:|---:|---|"]
    lines += [f"| {w} | {m:.1f} | {n:.1f} | {note} |" for w, m, n, note in rows]
    table = "\n".join(lines)
    if inf:
        mb, gz_mb, secs, files = inf
        table += (f"\n\nInference scan (`compat annotate --infer`, one run): {mb:.0f} MB of shared libraries "
                  f"({gz_mb:.0f} MB gzip layer, {files} ELF files) in {secs:.1f} s: "
                  f"**{mb / secs:.0f} MB/s** of layer content ({gz_mb / secs:.0f} MB/s compressed).")
    print(table)
    if args.no_write:
        return
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.platform()}"
    doc = f"""# Benchmarks

Written by `bench/run.py` (`./dev bench`); every figure comes from one run of that script on
the machine named below, {args.runs} runs per command after 2 warm-up runs ({max(args.runs, 101)} for the
in-process `compat.rank`), wall-clock medians.
Process timings include interpreter start-up. The registry is Debian's `docker-registry`
(CNCF distribution) on 127.0.0.1, started by the script; the index is `fixtures/demo`.

Machine: {machine}

{table}

How to read them:
- `compat detect` reads procfs/sysfs, loads archspec's data, and answers the facts that cost a
  child process (`ld.so --help`, MPI library versions, `mpirun --version`, runtime versions)
  from the probe cache (`~/.cache/compat/probes.json`, keyed by the binaries' size and mtime).
- `compat select` by tag with warm caches is one HEAD request plus the ranking (the index
  comes from the digest-keyed manifest cache), plus, by default, the NFD-artifact lookups for
  candidates without compat annotations: the demo has one such amd64 entry, so four more
  requests (referrers API and referrers tag, for it and for the index); `--no-referrers`
  skips them.
- What the rest of a `select` costs: interpreter start-up and imports (archspec, the
  matchers, the registry client) dominate; the work itself (one request, ranking 16
  descriptors) is a few milliseconds.
- The processes run the editable development install that `./dev` makes; where
  `PYTHONDONTWRITEBYTECODE=1` is set (as in this environment) every process compiles every
  module it imports, which a normal install with bytecode does not pay. Moving these rows to an
  installed build, interleaved with the peer commands, is issue 13's work.
"""
    with open(os.path.join(REPO, "BENCHMARKS.md"), "w") as fh:
        fh.write(doc)
    print("wrote BENCHMARKS.md")


if __name__ == "__main__":
    main()
