"""A large, varied image index and the host that ranks it (issue 13: ``compat.rank`` on 10,000
descriptors). The shape follows bench/run.py's 1,000-descriptor index and mixes what real
indexes hold: platforms and variants (amd64 v1-v4, arm64 v8-v9, ppc64le, windows), archspec
targets (known and unknown), CPU features and vendors, CUDA versions and architectures, AMD
targets, MPI modes, fabrics and providers, kernel specifiers, community-key aliases, weights,
attestations, duplicates and malformed descriptors (bad digests, sizes, platforms and
annotation values). Deterministic for a given ``n`` and ``seed``."""
import hashlib
import random

P = "org.hpc-compat."

TARGETS = ["x86_64_v2", "x86_64_v3", "x86_64_v4", "zen2", "zen3", "zen4", "icelake", "sapphirerapids",
           "skylake_avx512", "haswell", "neoverse_v1", "a64fx", "power9le", "zen9", "x86_64"]
PLATFORMS = [{"os": "linux", "architecture": "amd64"}, {"os": "linux", "architecture": "amd64", "variant": "v2"},
             {"os": "linux", "architecture": "amd64", "variant": "v3"},
             {"os": "linux", "architecture": "amd64", "variant": "v4"},
             {"os": "linux", "architecture": "x86_64"},
             {"os": "linux", "architecture": "arm64", "variant": "v8"},
             {"os": "linux", "architecture": "arm64", "variant": "v9.2"},
             {"os": "linux", "architecture": "ppc64le"}, {"os": "windows", "architecture": "amd64"},
             {"os": "linux", "architecture": "amd64", "os.features": ["win32k"]},
             {"os": "linux", "architecture": "amd64", "features": ["avx512f"]},
             {"os": "linux", "architecture": "amd64", "variant": "v5"}]
MALFORMED = [
    lambda d: "not a descriptor",
    lambda d: dict(d, digest="sha256:XYZ"),
    lambda d: dict(d, size=-1),
    lambda d: dict(d, platform={"os": "linux", "architecture": 7}),
    lambda d: dict(d, annotations={P + "cpu.target": 3}),
    lambda d: dict(d, annotations={P + "gpu.cuda.version": "twelve"}),
    lambda d: dict(d, annotations={P + "mpi.mode": "pmi"}),
    lambda d: dict(d, annotations={P + "no.such.key": "1"}),
    lambda d: dict(d, annotations={"vnd.docker.reference.type": "attestation-manifest"},
                   platform={"os": "unknown", "architecture": "unknown"}),
    lambda d: dict(d, artifactType="application/vnd.example+json"),
    lambda d: dict(d, mediaType="text/plain"),
]


def _annotations(rnd: random.Random, i: int) -> dict:
    ann = {P + "description": f"variant {i}"}
    if rnd.random() < 0.8:
        ann[P + "cpu.target"] = rnd.choice(TARGETS)
    if rnd.random() < 0.1:
        ann[P + "cpu.features"] = rnd.choice(["avx2", "avx512f,avx512bw", "sve", "avx2,fma"])
    if rnd.random() < 0.1:
        ann[P + "cpu.vendor"] = rnd.choice(["AuthenticAMD", "intel", "ARM"])
    if rnd.random() < 0.35:
        ann[P + "gpu.cuda.version"] = rnd.choice(["11.8", "12.2", "12.4", "12.6", "13.0"])
        ann[P + "gpu.cuda.arch"] = rnd.choice(["sm_80,sm_90", "sm_90", "compute_80", "sm_70,sm_80", "sm_90a",
                                               "sm_100f,compute_90"])
    elif rnd.random() < 0.05:
        ann[P + "gpu.amd.arch"] = rnd.choice(["gfx90a", "gfx942,gfx90a"])
    elif rnd.random() < 0.05:
        ann[P + "gpu.vendor"] = "none"
    if rnd.random() < 0.25:
        mode = rnd.choice(["hybrid", "bind", "pmi", None])
        ann[P + "mpi.implementation"] = rnd.choice(["openmpi", "mpich", "intel-mpi"])
        ann[P + "mpi.version"] = rnd.choice(["4.1", "5.0", "3.4", "2021.10"])
        if mode:
            ann[P + "mpi.mode"] = mode
        if mode == "pmi":
            ann[P + "mpi.pmi"] = rnd.choice(["pmix", "pmi2,pmix"])
        if rnd.random() < 0.5:
            ann[P + "libc.glibc"] = rnd.choice(["2.28", "2.34", "2.39"])
    if rnd.random() < 0.2:
        ann[P + "fabric"] = rnd.choice(["infiniband", "tcp", "slingshot,infiniband", "efa"])
        ann[P + "fabric.providers"] = rnd.choice(["verbs", "cxi", "tcp", "efa;ofi_rxm"])
    if rnd.random() < 0.05:
        ann[P + "os.kernel"] = rnd.choice([">=5.10", ">=6.8", "<5"])
    if rnd.random() < 0.1:
        ann[P + "weight"] = str(rnd.randint(-3, 3))
    if rnd.random() < 0.03:
        ann["org.supercontainers.hardware.gpu.cuda.version"] = rnd.choice(["12.2", "11.8"])
    return ann


def descriptor(rnd: random.Random, i: int) -> object:
    """One index entry: usually a well-formed image manifest descriptor, now and then a
    malformed one, an attestation or an artifact (1 in 20)."""
    d = {"mediaType": "application/vnd.oci.image.manifest.v1+json",
         "digest": "sha256:" + hashlib.sha256(str(i).encode()).hexdigest(), "size": 500 + i,
         "platform": dict(rnd.choice(PLATFORMS)), "annotations": _annotations(rnd, i)}
    if rnd.random() < 0.05:
        return rnd.choice(MALFORMED)(d)
    if rnd.random() < 0.02:
        del d["platform"]
    return d


def big_index(n: int = 10_000, seed: int = 13) -> dict:
    rnd = random.Random(seed)
    manifests = [descriptor(rnd, i) for i in range(n)]
    for i in range(0, n, 97):          # now and then the same descriptor twice (a duplicate)
        if i + 1 < n:
            manifests[i + 1] = manifests[i]
    return {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": manifests}


def bench_host():
    """bench/run.py's host: a Zen 4 at amd64/v4, one H100 (CUDA 12.4), InfiniBand, Open MPI."""
    from compat.host.assume import cpu_from_target
    from compat.host.profile import GPU, MPI, OS, Fabric, Host

    return Host(os=OS(arch="amd64", variant="v4", kernel="5.14.0", glibc="2.34"), cpu=cpu_from_target("zen4"),
                gpus=(GPU("nvidia", 0, cc="9.0", driver="550.54.14", cuda="12.4"),),
                fabrics=(Fabric("infiniband"),), mpi=(MPI("openmpi", "4.1.6", "openmpi"),), pmi=("pmix",))
