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


#: the values each key takes (tests draw from these too)
POOL = {
    P + "cpu.target": TARGETS,
    P + "cpu.features": ["avx2", "avx512f,avx512bw", "sve", "avx2,fma", "sse4.1"],
    P + "cpu.vendor": ["AuthenticAMD", "intel", "ARM"],
    P + "gpu.cuda.version": ["11.8", "12.2", "12.4", "12.6", "13.0"],
    P + "gpu.cuda.arch": ["sm_80,sm_90", "sm_90", "compute_80", "sm_70,sm_80", "sm_90a", "sm_100f,compute_90"],
    P + "gpu.amd.arch": ["gfx90a", "gfx942,gfx90a"],
    P + "gpu.vendor": ["none", "nvidia", "amd"],
    P + "mpi.implementation": ["openmpi", "mpich", "intel-mpi"],
    P + "mpi.version": ["4.1", "5.0", "3.4", "2021.10"],
    P + "mpi.mode": ["hybrid", "bind", "pmi", "none"],
    P + "mpi.pmi": ["pmix", "pmi2,pmix"],
    P + "libc.glibc": ["2.28", "2.34", "2.39"],
    P + "fabric": ["infiniband", "tcp", "slingshot,infiniband", "efa"],
    P + "fabric.providers": ["verbs", "cxi", "tcp", "efa;ofi_rxm"],
    P + "os.kernel": [">=5.10", ">=6.8", "<5"],
    P + "weight": ["-3", "0", "2", "3"],
    "org.supercontainers.hardware.gpu.cuda.version": ["12.2", "11.8"],
}


def _annotations(rnd: random.Random, i: int) -> dict:
    ann = {P + "description": f"variant {i}"}

    def maybe(p: float, *keys: str) -> None:
        if rnd.random() < p:
            full = [k if k in POOL else P + k for k in keys]
            ann.update((k, rnd.choice(POOL[k])) for k in full)

    maybe(0.8, "cpu.target")
    maybe(0.1, "cpu.features")
    maybe(0.1, "cpu.vendor")
    if rnd.random() < 0.35:
        maybe(1, "gpu.cuda.version", "gpu.cuda.arch")
    else:
        maybe(0.05, "gpu.amd.arch")
    maybe(0.03, "gpu.vendor")
    if rnd.random() < 0.25:
        maybe(1, "mpi.implementation", "mpi.version")
        maybe(0.7, "mpi.mode")
        maybe(0.5, "mpi.pmi")
        maybe(0.5, "libc.glibc")
    maybe(0.2, "fabric", "fabric.providers")
    maybe(0.05, "os.kernel")
    maybe(0.1, "weight")
    maybe(0.03, "org.supercontainers.hardware.gpu.cuda.version")
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
