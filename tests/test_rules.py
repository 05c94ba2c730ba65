"""Every rule and tie-break of the selection contract, on small synthetic indexes."""
import hashlib

import pytest

from compat.host.profile import CPU, GPU, MPI, OS, Fabric, Host
from compat.host.assume import cpu_from_target
from compat.host.cpu import oci_variant
from compat.match.rank import rank

from helpers import P  # noqa: E402
_n = [0]


def desc(arch="amd64", variant=None, os_="linux", features=None, mt="application/vnd.oci.image.manifest.v1+json",
         **ann):
    _n[0] += 1
    d = {"mediaType": mt, "digest": "sha256:" + hashlib.sha256(str(_n[0]).encode()).hexdigest(), "size": 1,
         "platform": {"os": os_, "architecture": arch}}
    if variant:
        d["platform"]["variant"] = variant
    if features:
        d["platform"]["os.features"] = features
    if ann:
        d["annotations"] = {(k if k.startswith(("org.", "vnd.")) else P + k.replace("_", ".")): v
                            for k, v in ann.items()}
    return d


def host(target="zen3", gpus=(), mpi=(), pmi=(), fabrics=(), kernel="5.14.0", glibc="2.34"):
    cpu = cpu_from_target(target)
    from compat.vocab.data import machine_archs
    arch = machine_archs()[cpu.family]
    return Host(os=OS(arch=arch, variant=oci_variant(arch, cpu), kernel=kernel, glibc=glibc), cpu=cpu,
                gpus=tuple(gpus), mpi=tuple(mpi), pmi=tuple(pmi), fabrics=tuple(Fabric(type=f) for f in fabrics))


def h100(n=1, driver="550.54.14", cuda="12.4", cc="9.0"):
    return [GPU(vendor="nvidia", index=i, cc=cc, driver=driver, cuda=cuda) for i in range(n)]


def pick(h, *descs, **kw):
    r = rank({"schemaVersion": 2, "manifests": list(descs)}, h, **kw)
    return r


def best(h, *descs, **kw):
    b = pick(h, *descs, **kw).best
    return descs.index(next(d for d in descs if d["digest"] == b.digest)) if b else None


def verdict(h, d, **kw):
    c = pick(h, d, **kw).candidates[0]
    return c.verdict, c.reason


# -- platform ------------------------------------------------------------------------------------

def test_os_and_arch_must_match_after_normalisation():
    h = host("zen3")
    assert verdict(h, desc(arch="x86_64"))[0] == "compatible"
    assert verdict(h, desc(arch="arm64")) == ("incompatible", "linux/arm64 is not linux/amd64")
    assert verdict(h, desc(os_="windows"))[0] == "incompatible"


def test_amd64_variant_ladder_prefers_the_highest_runnable():
    h = host("zen3")                           # x86-64-v3
    v1, v2, v3, v4 = desc(), desc(variant="v2"), desc(variant="v3"), desc(variant="v4")
    assert verdict(h, v4)[1].startswith("variant v4 is above")
    assert best(h, v1, v2, v3, v4) == 2


def test_arm64_variant_ladder_maps_v9_to_v8():
    h = host("neoverse_v2")                    # armv9.0a -> also runs v8.0 .. v8.5
    assert verdict(h, desc(arch="arm64", variant="v8.2"))[0] == "compatible"
    assert verdict(h, desc(arch="arm64", variant="v8.6"))[0] == "incompatible"
    assert verdict(host("neoverse_v1"), desc(arch="arm64", variant="v9"))[0] == "incompatible"


def test_os_features_must_be_a_subset():
    assert verdict(host(), desc(features=["win32k"]))[1] == "os.features win32k not offered by the host"


def test_descriptor_without_platform_is_reported_not_guessed():
    d = desc()
    del d["platform"]
    assert verdict(host(), d) == ("incompatible", "descriptor has no platform; compat does not guess an architecture")


def test_platform_override():
    assert verdict(host("zen3"), desc(arch="arm64"), platform="linux/arm64")[0] == "compatible"


def test_attestations_and_artifacts_are_never_candidates():
    att = desc(arch="unknown", os_="unknown", **{"vnd.docker.reference.type": "attestation-manifest"})
    art = desc()
    art["artifactType"] = "application/vnd.nfd.image-compatibility.v1alpha1"
    r = pick(host(), att, art, desc())
    assert [c.verdict for c in r.candidates] == ["compatible", "skipped", "skipped"]


def test_nested_index_is_walked():
    inner = {"schemaVersion": 2, "manifests": [desc(), desc(cpu_target="zen3")]}
    nested = desc(mt="application/vnd.oci.image.index.v1+json")
    r = rank({"schemaVersion": 2, "manifests": [nested]}, host(), fetch=lambda d, mt: inner)
    assert r.best.digest == inner["manifests"][1]["digest"]
    assert r.best.path == "manifests[0].manifests[1]"
    r = rank({"schemaVersion": 2, "manifests": [nested]}, host())
    assert r.candidates[0].verdict == "error" and "nested index not walked" in r.candidates[0].reason


# -- vocabulary errors ----------------------------------------------------------------------------

def test_unknown_key_is_unknown_unless_allowed():
    d = desc(**{"gpu.colour": "green", "cpu.target": "zen3"})
    v, reason = verdict(host(), d)
    assert v == "unknown" and "org.hpc-compat.gpu.colour" in reason
    c = pick(host(), d, allow_unknown=True).candidates[0]
    assert c.verdict == "compatible" and "ignored unknown keys" in c.notes[0]


@pytest.mark.parametrize("key,value,needle", [
    ("gpu.cuda.arch", "sm_9x", "'sm_9x' is not sm_XY"),
    ("os.kernel", ">=five", "not a version specifier"),
    ("gpu.vendor", "matrox", "not one of"),
    ("mpi.mode", "teleport", "not one of bind"),
    ("weight", "heavy", "not an integer"),
    ("fabric", "carrier-pigeon", "not one of"),
])
def test_malformed_value_excludes_with_key_and_digest(key, value, needle):
    d = desc(**{key: value})
    v, reason = verdict(host(), d)
    assert v == "error" and P + key in reason and needle in reason and d["digest"] in reason


def test_contradictions_are_errors():
    assert "contradicts" in verdict(host(), desc(**{"gpu.vendor": "amd", "gpu.cuda.version": "12.4"}))[1]
    assert "needs org.hpc-compat.mpi.pmi" in verdict(host(), desc(**{"mpi.mode": "pmi"}))[1]


def test_generic_is_compatible_and_lowest():
    h = host("zen3")
    assert best(h, desc(), desc(description="annotated but no requirement", cpu_target="x86_64_v2")) == 1


# -- CPU -------------------------------------------------------------------------------------------

def test_cpu_target_descendant_rule():
    h = host("zen3")
    assert verdict(h, desc(cpu_target="zen2"))[0] == "compatible"
    v, reason = verdict(h, desc(cpu_target="zen4"))
    assert v == "incompatible" and "needs zen4; host is zen3 (missing" in reason and "avx512bw" in reason


def test_cpu_specificity_nearest_target_wins():
    h = host("zen3")
    assert best(h, desc(cpu_target="x86_64_v3"), desc(cpu_target="zen2"), desc(cpu_target="zen")) == 1


def test_amd64_variant_counts_as_its_level_target():
    h = host("zen3")
    assert best(h, desc(cpu_target="x86_64_v2"), desc(variant="v3")) == 1


def test_unknown_target_name_is_not_runnable():
    assert "not a microarchitecture this archspec knows" in verdict(host(), desc(cpu_target="zen9"))[1]


def test_cpu_features_and_aliases():
    h = host("icelake")
    assert verdict(h, desc(cpu_features="avx512f,avx512bw"))[0] == "compatible"
    assert verdict(h, desc(cpu_features="avx512"))[0] == "compatible"     # archspec alias
    assert "needs amx_tile" in verdict(h, desc(cpu_features="amx_tile"))[1]


def test_cpu_vendor():
    assert "needs a GenuineIntel CPU; host is AuthenticAMD" in verdict(host("zen3"), desc(cpu_vendor="intel"))[1]


def test_unknown_host_cpu_needs_assume():
    h = Host(os=OS(arch="amd64"), cpu=CPU())
    v, reason = verdict(h, desc(cpu_target="zen3"))
    assert reason == "cpu: unknown: cpu.target (state it with --assume cpu.target=...)"


# -- GPU -------------------------------------------------------------------------------------------

def test_sass_and_ptx_rules():
    h = host(gpus=h100())
    exact, same, ptx = desc(gpu_cuda_arch="sm_90"), desc(gpu_cuda_arch="sm_80"), desc(gpu_cuda_arch="compute_80")
    assert verdict(h, same)[0] == "incompatible"          # sm_80 SASS does not run on 9.0
    assert best(h, ptx, exact) == 1
    a100 = host(gpus=h100(cc="8.6"))
    assert best(a100, ptx, same) == 1                    # same-major SASS beats PTX JIT
    assert best(a100, same, desc(gpu_cuda_arch="sm_86")) == 1


def test_arch_specific_sass_only_on_that_capability():
    assert verdict(host(gpus=h100()), desc(gpu_cuda_arch="sm_90a"))[0] == "compatible"
    assert verdict(host(gpus=h100(cc="10.0")), desc(gpu_cuda_arch="sm_90a"))[0] == "incompatible"
    assert verdict(host(gpus=h100(cc="10.0")), desc(gpu_cuda_arch="compute_90"))[0] == "compatible"
    assert verdict(host(gpus=h100(cc="10.3")), desc(gpu_cuda_arch="sm_100f"))[0] == "compatible"


def test_every_gpu_must_be_served():
    mixed = host(gpus=[GPU("nvidia", 0, cc="9.0", cuda="12.4", driver="550.54.14"),
                       GPU("nvidia", 1, cc="8.0", cuda="12.4", driver="550.54.14")])
    v, reason = verdict(mixed, desc(gpu_cuda_arch="sm_90"))
    assert v == "incompatible" and "host GPU 1 is 8.0" in reason
    assert verdict(mixed, desc(gpu_cuda_arch="sm_80,sm_90"))[0] == "compatible"


def test_cuda_native_beats_minor_version_and_newest_native_wins():
    h = host(gpus=h100(driver="535.161.08", cuda="12.2"))
    c118, c121, c124 = (desc(gpu_cuda_version=v, gpu_cuda_arch="sm_90") for v in ("11.8", "12.1", "12.4"))
    assert best(h, c118, c124, c121) == 2
    c = pick(h, c124).candidates[0]
    assert c.compatible and "minor-version compatibility" in c.notes[0]


def test_cuda_driver_below_floor_and_other_major():
    assert "below the 12.x floor" in verdict(host(gpus=h100(driver="520.61.05", cuda="12.0")),
                                             desc(gpu_cuda_version="12.4"))[1]
    assert "needs CUDA 13.0" in verdict(host(gpus=h100()), desc(gpu_cuda_version="13.0"))[1]


def test_cuda13_cannot_serve_volta():
    h = host(gpus=h100(cc="7.0", driver="580.65.06", cuda="13.0"))
    assert "cannot build code for compute capability 7.0" in verdict(h, desc(gpu_cuda_version="13.0"))[1]


def test_host_gpu_ranks_gpu_images_above_cpu_only_but_keeps_them():
    h = host(gpus=h100())
    r = pick(h, desc(cpu_target="zen3"), desc(gpu_cuda_version="12.4"))
    assert [c.verdict for c in r.candidates] == ["compatible", "compatible"]
    assert r.best.annotations.get(P + "gpu.cuda.version") == "12.4"


def test_no_gpu_excludes_gpu_images_and_none_is_always_fine():
    assert "needs an NVIDIA GPU; host has none" in verdict(host(), desc(gpu_cuda_version="12.4"))[1]
    assert verdict(host(), desc(gpu_vendor="none"))[0] == "compatible"
    unknown = Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3"), gpus=None)
    assert "unknown: gpu.vendor" in verdict(unknown, desc(gpu_vendor="nvidia"))[1]


def test_unknown_capability_is_unknown():
    h = host(gpus=[GPU("nvidia", 0, cc=None, cuda="12.4", driver="550.54.14")])
    assert "unknown: gpu.cc" in verdict(h, desc(gpu_cuda_arch="sm_90"))[1]


def test_amd_gfx_and_rocm():
    mi = host(gpus=[GPU("amd", i, gfx="gfx90a", rocm="5.7.1") for i in range(2)])
    assert verdict(mi, desc(gpu_amd_arch="gfx908,gfx90a"))[0] == "compatible"
    assert "host GPU 0 is gfx90a" in verdict(mi, desc(gpu_amd_arch="gfx942"))[1]
    assert "needs ROCm 6.0" in verdict(mi, desc(gpu_rocm_version="6.0"))[1]


# -- MPI -------------------------------------------------------------------------------------------

OMPI = MPI("openmpi", "4.1.5", "openmpi")
CRAY = MPI("cray-mpich", "8.1.27", "mpich")


def test_bind_needs_same_abi_and_version_at_least():
    h = host(mpi=[CRAY])
    assert verdict(h, desc(mpi_abi="mpich", mpi_mode="bind"))[0] == "compatible"
    assert "needs a host MPI of ABI openmpi" in verdict(h, desc(mpi_implementation="openmpi", mpi_mode="bind"))[1]
    h = host(mpi=[OMPI])
    assert verdict(h, desc(mpi_implementation="openmpi", mpi_version="5.0", mpi_mode="bind"))[0] == "incompatible"
    assert verdict(h, desc(mpi_implementation="openmpi", mpi_version="4.1.2", mpi_mode="bind"))[0] == "compatible"


def test_bind_warns_about_older_image_glibc():
    c = pick(host(mpi=[CRAY], glibc="2.31"), desc(mpi_abi="mpich", mpi_mode="bind", libc_glibc="2.28")).candidates[0]
    assert c.compatible and "glibc 2.31" in c.notes[0]


def test_hybrid_open_mpi_needs_same_major():
    h = host(mpi=[OMPI])
    assert verdict(h, desc(mpi_implementation="openmpi", mpi_version="4.0", mpi_mode="hybrid"))[0] == "compatible"
    assert "same major version" in verdict(h, desc(mpi_implementation="openmpi", mpi_version="5.0",
                                                   mpi_mode="hybrid"))[1]
    assert verdict(host(mpi=[CRAY]), desc(mpi_implementation="mpich", mpi_mode="hybrid"))[0] == "compatible"


def test_pmi_mode_needs_the_launcher_to_offer_one():
    assert verdict(host(pmi=["pmi2"]), desc(mpi_mode="pmi", mpi_pmi="pmix,pmi2"))[0] == "compatible"
    assert "offers pmi2" in verdict(host(pmi=["pmi2"]), desc(mpi_mode="pmi", mpi_pmi="pmix"))[1]
    unknown = Host(os=OS(arch="amd64", variant="v3"), cpu=cpu_from_target("zen3"), pmi=None)
    assert "unknown: mpi.pmi" in verdict(unknown, desc(mpi_mode="pmi", mpi_pmi="pmix"))[1]


def test_without_mode_mpi_only_ranks():
    h = host(mpi=[OMPI])
    assert verdict(host(mpi=[CRAY]), desc(mpi_implementation="openmpi"))[0] == "compatible"
    same_version = desc(mpi_implementation="openmpi", mpi_version="4.1")
    same_impl = desc(mpi_implementation="openmpi", mpi_version="4.0")
    same_abi = desc(mpi_abi="openmpi")
    assert best(h, same_abi, same_impl, same_version) == 2
    assert best(h, same_abi, same_impl) == 1


# -- fabric, kernel --------------------------------------------------------------------------------

def test_fabric_filter_and_native_provider_ranking():
    h = host(fabrics=["infiniband"])
    assert verdict(h, desc(fabric="efa"))[1] == "fabric: needs efa; host has infiniband"
    tcp, native = desc(fabric="tcp", fabric_providers="tcp"), desc(fabric_providers="verbs,tcp")
    assert best(h, tcp, native) == 1
    assert best(host(), desc(), tcp) == 1        # tcp is always present, and beats unstated


def test_kernel_specifier():
    assert verdict(host(kernel="5.14.0-284.el9"), desc(os_kernel=">=5.10"))[0] == "compatible"
    assert "needs kernel >=6.1" in verdict(host(kernel="5.14.0"), desc(os_kernel=">=6.1"))[1]
    assert "unknown: os.kernel" in verdict(host(kernel=None), desc(os_kernel=">=5.10"))[1]


# -- tie-breaks ------------------------------------------------------------------------------------

def test_more_satisfied_requirements_then_weight_then_index_order():
    h = host("zen3", fabrics=["infiniband"])
    one = desc(cpu_target="zen3")
    two = desc(cpu_target="zen3", os_kernel=">=4.0")
    assert best(h, one, two) == 1
    light, heavy = desc(cpu_target="zen3", weight="-5"), desc(cpu_target="zen3", weight="10")
    assert best(h, heavy, light) == 0 and best(h, light, heavy) == 1
    first, second = desc(cpu_target="zen3"), desc(cpu_target="zen3")
    assert best(h, first, second) == 0


def test_ranking_order_gpu_before_fabric_before_mpi_before_cpu():
    h = host("zen3", gpus=h100(), fabrics=["infiniband"], mpi=[OMPI])
    gpu = desc(gpu_cuda_arch="sm_90")
    fab = desc(fabric="infiniband", mpi_implementation="openmpi", mpi_version="4.1.5", cpu_target="zen3")
    assert best(h, fab, gpu) == 1
    mpi = desc(mpi_implementation="openmpi", mpi_version="4.1.5", cpu_target="zen3")
    assert best(h, mpi, desc(fabric="infiniband")) == 1
    cpu = desc(cpu_target="zen3")
    assert best(h, cpu, desc(mpi_implementation="openmpi")) == 1


# -- a requested platform bounds the CPU alike for variants and cpu.target ---------------------------
# (requested platform, host, descriptor, compatible?, reason fragment)
REQUESTED = [
    ("linux/amd64/v2", "zen4", dict(variant="v3"), False, "variant v3 is above what the host runs"),
    ("linux/amd64/v2", "zen4", dict(cpu_target="x86_64_v3"), False, "needs x86_64_v3; host is x86_64_v2"),
    ("linux/amd64/v2", "zen4", dict(cpu_target="zen2"), False, "needs zen2; host is x86_64_v2"),
    ("linux/amd64/v2", "zen4", dict(cpu_features="avx2"), False, "needs avx2"),
    ("linux/amd64/v2", "zen4", dict(variant="v2"), True, "x86_64_v2 (platform variant) <= x86_64_v2"),
    ("linux/amd64/v2", "zen4", dict(cpu_target="x86_64_v2"), True, "x86_64_v2 <= x86_64_v2"),
    ("linux/amd64/v2", "zen4", dict(cpu_vendor="amd"), True, "AuthenticAMD"),   # the same machine, bounded
    ("linux/amd64/v4", "zen4", dict(cpu_target="zen4"), True, "zen4 <= zen4"),   # its own level: the host CPU
    ("linux/amd64", "zen4", dict(cpu_target="x86_64_v2"), False, "host is x86_64"),
    ("linux/amd64/v4", "haswell", dict(variant="v4"), True, "x86_64_v4 (platform variant)"),   # another machine
    ("linux/amd64/v4", "haswell", dict(cpu_target="x86_64_v4"), True, "x86_64_v4 <= x86_64_v4"),
    ("linux/amd64/v4", "haswell", dict(cpu_vendor="intel"), False, "unknown: cpu.vendor"),
    ("linux/arm64/v8.2", "neoverse_v2", dict(arch="arm64", variant="v8.4"), False, "above what the host runs"),
    ("linux/arm64/v8.2", "neoverse_v2", dict(arch="arm64", cpu_target="armv8.4a"), False, "host is armv8.2a"),
    ("linux/arm64/v8.2", "neoverse_v2", dict(arch="arm64", cpu_target="neoverse_n1"), False, "host is armv8.2a"),
    ("linux/arm64/v8.2", "neoverse_v2", dict(arch="arm64", cpu_target="armv8.2a"), True, "armv8.2a <= armv8.2a"),
    ("linux/arm64/v9.6", "zen4", dict(arch="arm64", cpu_target="armv9.2a"), True, "armv9.2a <= armv9.2a"),
    ("linux/arm64/v9.6", "zen4", dict(arch="arm64", variant="v9.6"), True, "armv9.6a (platform variant)"),
    ("linux/arm64/v8.7", "zen4", dict(arch="arm64", cpu_target="armv9.0a"), False, "host is armv8.6a"),
]


@pytest.mark.parametrize("requested,target,d,compatible,fragment", REQUESTED,
                         ids=[f"{r[0]} {r[1]} {sorted(r[2].items())}" for r in REQUESTED])
def test_requested_platform_bounds_the_cpu_level(requested, target, d, compatible, fragment):
    c = pick(host(target), desc(**d), platform=requested).candidates[0]
    assert c.compatible is compatible and fragment in c.reason, c.reason


def test_variant_is_explained_as_the_cpu_requirement_it_is():
    h = host("zen4")
    assert pick(h, desc(variant="v3")).best.reason.startswith("x86_64_v3 (platform variant) <= zen4")
    both = pick(h, desc(variant="v3", cpu_target="zen3")).best
    assert "zen3 <= zen4, x86_64_v3 (platform variant) <= zen4" in both.reason
    assert pick(h, desc()).best.reason.startswith("no CPU requirement")


# -- the arm64 ladder beyond archspec's levels -------------------------------------------------------
# (host's level, listed variants, expected order): archspec knows no v8.7-v8.9, v9.1, v9.3+
ARM_LADDER = [
    ("linux/arm64/v9.6", ["v9.2", "v8.6", "v9", None, "v8.7", "v9.6"], ["v9.6", "v9.2", "v9", "v8.7", "v8.6", None]),
    ("linux/arm64/v8.7", [None, "v8.2", "v8.7"], ["v8.7", "v8.2", None]),
    ("linux/arm64/v9.1", ["v8.6", "v9", "v9.1"], ["v9.1", "v9", "v8.6"]),
]


@pytest.mark.parametrize("requested,listed,order", ARM_LADDER, ids=[a[0] for a in ARM_LADDER])
def test_arm64_ladder_is_the_platforms_own(requested, listed, order):
    descs = [desc(arch="arm64", variant=v) for v in listed]
    r = pick(host("neoverse_v2"), *descs, platform=requested)
    by_digest = {d["digest"]: v for d, v in zip(descs, listed)}
    assert [by_digest[c.digest] for c in r.candidates] == order


def test_host_cpu_on_the_arm64_ladder():
    # neoverse_v2 is armv9.0a: v9 exact, then v8.5 .. v8.0, never v8.6
    r = pick(host("neoverse_v2"), desc(arch="arm64", variant="v8.5"), desc(arch="arm64", variant="v9"),
             desc(arch="arm64", variant="v8.6"))
    assert [c.platform_text for c in r.candidates] == ["linux/arm64/v9", "linux/arm64/v8.5", "linux/arm64/v8.6"]
    assert r.candidates[2].verdict == "incompatible"


@pytest.mark.parametrize("requested,variant,said", [
    ("linux/arm64/v9.6", "v9.2", "armv9.2a (platform variant) <= armv9.6a"),
    ("linux/arm64/v8.7", "v8.2", "armv8.2a (platform variant) <= armv8.7a"),
])
def test_arm64_variant_reason_names_the_platform_level_not_archspecs_last(requested, variant, said):
    """archspec stops at armv9.2a; the reason compares on the platform's own ladder."""
    r = pick(host("neoverse_v2"), desc(arch="arm64", variant=variant), platform=requested)
    assert r.best.reason.startswith(said), r.best.reason


def test_unknown_host_architecture_is_unknown_not_a_mismatch():
    """A host whose architecture nobody could tell (an NFD NodeFeature without CPU facts):
    the reason says what to state, not that linux/amd64 is not 'linux/'."""
    h = host("zen3")
    h = h._replace(os=h.os._replace(arch=None, variant=None))
    r = pick(h, desc())
    assert r.best is None
    assert r.candidates[0].reason.startswith("unknown: os.arch (state it with --assume os.arch=")
