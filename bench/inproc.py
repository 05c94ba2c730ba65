"""The in-process rows, run by the installed build's python (``bench/run.py`` starts it):
prints one JSON object.

  inproc.py rank RUNS                    compat.rank on a 10,000-descriptor index
  inproc.py infer LAYOUT RUNS [--zlib]   annotate --infer's scan of the layout's one image
  inproc.py plan-site DIR                write 10,000 node profiles and a 100-variant layout
"""
import cProfile
import hashlib
import json
import os
import pstats
import statistics
import sys
import time
import zlib

import compat
from compat.host.assume import cpu_from_target
from compat.host.profile import GPU, MPI, OS, Fabric, Host

TARGETS = ["x86_64_v2", "x86_64_v3", "x86_64_v4", "zen2", "zen3", "zen4", "icelake", "sapphirerapids",
           "skylake_avx512", "haswell"]
CUDA = ["11.8", "12.2", "12.4", "12.6"]
CUDA_ARCH = ["sm_80,sm_90", "sm_90", "compute_80", "sm_70,sm_80"]


def digest(i: int) -> str:
    return "sha256:" + hashlib.sha256(str(i).encode()).hexdigest()


def rank_index(n: int) -> dict:
    """An index of ``n`` descriptors: CPU targets, CUDA on every third, MPI and fabric on
    every fifth, every seventh arm64."""
    manifests = []
    for i in range(n):
        ann = {"org.hpc-compat.cpu.target": TARGETS[i % len(TARGETS)],
               "org.hpc-compat.description": f"variant {i}"}
        if i % 3 == 0:
            ann["org.hpc-compat.gpu.cuda.version"] = CUDA[i % 4]
            ann["org.hpc-compat.gpu.cuda.arch"] = CUDA_ARCH[i % 4]
        if i % 5 == 0:
            ann.update({"org.hpc-compat.mpi.implementation": "openmpi", "org.hpc-compat.mpi.version": "4.1",
                        "org.hpc-compat.mpi.mode": "hybrid", "org.hpc-compat.fabric": "infiniband",
                        "org.hpc-compat.fabric.providers": "verbs"})
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(i),
                          "size": 500, "platform": {"os": "linux", "architecture": ["amd64", "arm64"][i % 7 == 0]},
                          "annotations": ann})
    return {"schemaVersion": 2, "manifests": manifests}


def rank_host() -> Host:
    return Host(os=OS(arch="amd64", variant="v4", kernel="5.14.0", glibc="2.34"), cpu=cpu_from_target("zen4"),
                gpus=(GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4"),),
                fabrics=(Fabric("infiniband"),), mpi=(MPI("openmpi", "4.1.6", "openmpi"),), pmi=("pmix",))


def top_functions(profile: cProfile.Profile, n: int = 4) -> list:
    stats = pstats.Stats(profile).stats
    rows = sorted(stats.items(), key=lambda kv: -kv[1][2])[:n]
    return [[f"{os.path.basename(f)}:{fn}", round(tt * 1000, 1)] for (f, _, fn), (_, _, tt, _, _) in rows]


def bench_rank(runs: int) -> dict:
    index, host = rank_index(10_000), rank_host()
    compat.rank(index, host)                 # warm: data tables loaded once per process
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        result = compat.rank(index, host)
        times.append((time.perf_counter() - t) * 1000)
    profile = cProfile.Profile()
    profile.runcall(compat.rank, index, host)
    return {"median_ms": statistics.median(times), "best_ms": min(times), "runs": runs,
            "compatible": len(result.compatible), "top": top_functions(profile)}


def bench_infer(layout: str, runs: int, use_zlib: bool) -> dict:
    from compat.infer import infer_image, layer
    from compat.oci.reference import parse
    from compat.oci.source import Source

    if use_zlib:
        layer.inflate_module = lambda: zlib
    with open(os.path.join(layout, "manifest.json")) as fh:
        manifest = json.load(fh)
    with open(os.path.join(layout, "content.json")) as fh:
        content = json.load(fh)["bytes"]
    src = Source(parse(f"oci:{layout}"))
    times, result = [], {}
    cpu = time.process_time()
    for _ in range(runs):
        t = time.perf_counter()
        result = infer_image(src, "sha256:" + "0" * 64, manifest)
        times.append(time.perf_counter() - t)
    cpu = (time.process_time() - cpu) / runs
    return {"median_s": statistics.median(times), "best_s": min(times), "cpu_s": cpu, "runs": runs,
            "files": result["files"],
            "content_mb": content / 1e6, "layer_mb": result["bytes"] / 1e6,
            "decompress_s": _decompress_only(layout, manifest),
            "codec": "zstd" if "zstd" in manifest["layers"][0]["mediaType"] else layer.inflate_module().__name__}


def _decompress_only(layout: str, manifest: dict) -> float:
    """Seconds to read the layer's tar bytes alone (digest check and decompression, no tar)."""
    from compat.infer import layer

    d = manifest["layers"][0]["digest"]
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        with open(os.path.join(layout, "blobs", "sha256", d[7:]), "rb", buffering=0) as raw:
            stream = layer.open_tar(layer.Hashing(raw, d, lambda n: None), manifest["layers"][0]["size"])
            while stream.read(1 << 20):
                pass
        best = min(best, time.perf_counter() - t)
    return best


def plan_site(root: str) -> dict:
    """10,000 node profiles (50 node types: CPU target x GPU) in ``root``/nodes and an OCI
    layout whose index has 100 variants, for ``compat plan``."""
    targets = ["haswell", "skylake_avx512", "icelake", "sapphirerapids", "zen2", "zen3", "zen4", "cascadelake",
               "broadwell", "x86_64_v3"]
    gpus = [(), (GPU("nvidia", 0, cc="8.0", driver="535.104.05", cuda="12.2"),),
            (GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4"),),
            (GPU("nvidia", 0, cc="7.0", driver="470.1", cuda="11.4"),),
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
            ann["org.hpc-compat.gpu.cuda.version"] = CUDA[i % 4]
            ann["org.hpc-compat.gpu.cuda.arch"] = CUDA_ARCH[i % 4]
        manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest(i),
                          "size": 500, "platform": {"os": "linux", "architecture": "amd64"}, "annotations": ann})
    blob = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                       "manifests": manifests}).encode()
    layout = os.path.join(root, "layout")
    os.makedirs(os.path.join(layout, "blobs", "sha256"))
    index_digest = hashlib.sha256(blob).hexdigest()
    with open(os.path.join(layout, "blobs", "sha256", index_digest), "wb") as f:
        f.write(blob)
    with open(os.path.join(layout, "oci-layout"), "w") as f:
        f.write('{"imageLayoutVersion": "1.0.0"}')
    with open(os.path.join(layout, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.index.v1+json",
                                                      "digest": "sha256:" + index_digest, "size": len(blob),
                                                      "annotations": {"org.opencontainers.image.ref.name": "1"}}]}, f)
    return {"nodes": nodes, "ref": "oci:" + layout + ":1"}


def main(argv):
    what = argv[0]
    if what == "rank":
        out = bench_rank(int(argv[1]))
    elif what == "infer":
        out = bench_infer(argv[1], int(argv[2]), "--zlib" in argv)
    elif what == "plan-site":
        out = plan_site(argv[1])
    else:
        raise SystemExit(__doc__)
    out["compat"] = compat.__file__
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1:])
