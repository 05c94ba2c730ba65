"""Inference from real binaries built here (gcc with -march/-mneeded, nvcc -gencode, Debian's
Open MPI and MPICH wrappers), packed into OCI images by the test; what compat infers must
equal what was built."""
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import tarfile

import pytest

from conftest import run_compat

C_SRC = "int main(void){volatile double x = 1.5; return (int)(x * x) - 2;}\n"
MPI_SRC = '#include <mpi.h>\nint main(int c, char **v){MPI_Init(&c, &v); MPI_Finalize(); return 0;}\n'
CU_SRC = "__global__ void k(float *x){x[threadIdx.x] *= 2.0f;}\nint main(){return 0;}\n"
GCC = shutil.which("gcc")
NVCC = shutil.which("nvcc")
need_gcc = pytest.mark.skipif(GCC is None, reason="no gcc")


def sh(*argv, cwd):
    subprocess.run(argv, cwd=cwd, check=True, capture_output=True, timeout=300)


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def image(out, tag, layers, arch="amd64"):
    """Write an OCI image to layout ``out`` under ``tag``; ``layers``: list of {path: bytes | None}
    (None = a whiteout for that path)."""
    os.makedirs(os.path.join(out, "blobs", "sha256"), exist_ok=True)
    if not os.path.exists(os.path.join(out, "oci-layout")):
        json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))

    def blob(data):
        d = sha(data)
        open(os.path.join(out, "blobs", "sha256", d[7:]), "wb").write(data)
        return d

    descs, diff_ids = [], []
    for files in layers:
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for path, content in sorted(files.items()):
                if content is None:
                    d, b = os.path.split(path)
                    info = tarfile.TarInfo(os.path.join(d, ".wh." + b))
                    content = b""
                else:
                    info = tarfile.TarInfo(path)
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
        diff_ids.append(sha(raw.getvalue()))
        gz = gzip.compress(raw.getvalue(), mtime=0)
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": blob(gz),
                      "size": len(gz)})
    cfg = json.dumps({"architecture": arch, "os": "linux", "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "history": [{"created_by": "test"}] * len(layers)}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg),
                                 "size": len(cfg)}, "layers": descs}).encode()
    d = blob(man)
    path = os.path.join(out, "index.json")
    top = json.load(open(path)) if os.path.exists(path) else {"schemaVersion": 2, "manifests": []}
    top["manifests"] = [m for m in top["manifests"]
                        if (m.get("annotations") or {}).get("org.opencontainers.image.ref.name") != tag]
    top["manifests"].append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d,
                             "size": len(man), "annotations": {"org.opencontainers.image.ref.name": tag}})
    json.dump(top, open(path, "w"))
    return d


def infer(ref, *extra):
    proc = run_compat("annotate", ref, "--infer", "--json", *extra, check=0)
    doc = json.loads(proc.stdout)
    return doc


def proposed(doc, i=0):
    return {k: v["value"] for k, v in doc[i]["proposed"].items()}


@pytest.fixture(scope="module")
def build(tmp_path_factory):
    d = tmp_path_factory.mktemp("src")
    (d / "p.c").write_text(C_SRC)
    return d


def compile_c(build, name, *flags):
    sh(GCC, "-O2", *flags, "-o", name, "p.c", cwd=build)
    return (build / name).read_bytes()


def wrap_index(out, tag):
    """An index whose only descriptor is the image tagged ``tag`` (annotate --infer reads indexes)."""
    top = json.load(open(os.path.join(out, "index.json")))
    m = [x for x in top["manifests"] if x["annotations"]["org.opencontainers.image.ref.name"] == tag][0]
    idx = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                      "manifests": [{"mediaType": m["mediaType"], "digest": m["digest"], "size": m["size"],
                                     "platform": {"os": "linux", "architecture": "amd64"}}]}).encode()
    open(os.path.join(out, "blobs", "sha256", sha(idx)[7:]), "wb").write(idx)
    top["manifests"].append({"mediaType": "application/vnd.oci.image.index.v1+json", "digest": sha(idx),
                             "size": len(idx), "annotations": {"org.opencontainers.image.ref.name": tag + "-index"}})
    json.dump(top, open(os.path.join(out, "index.json"), "w"))
    return f"oci:{out}:{tag}-index"


@need_gcc
@pytest.mark.parametrize("level", ["v2", "v3", "v4"])
def test_isa_level_from_gnu_property_notes(build, tmp_path, level):
    binary = compile_c(build, f"app-{level}", f"-march=x86-64-{level}", "-mneeded")
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/bin/app": binary}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["cpu.target"] == f"x86_64_{level}"
    ev = doc[0]["proposed"]["cpu.target"]["evidence"][0]
    assert ev["file"] == "/usr/bin/app" and "GNU_PROPERTY_X86_ISA_1_NEEDED" in ev["section"]


@need_gcc
@pytest.mark.parametrize("name,flags,target,section", [
    # no ISA note: the DWARF producer string of -g records -march
    ("app-g", ["-march=x86-64-v3", "-g"], "x86_64_v3", ".debug_str"),
    # a named CPU, recorded by -frecord-gcc-switches, maps to its archspec target
    ("app-zen3", ["-march=znver3", "-frecord-gcc-switches"], "zen3", ".GCC.command.line"),
])
def test_march_recorded_by_gcc(build, tmp_path, name, flags, target, section):
    binary = compile_c(build, name, *flags)
    out = str(tmp_path / "l")
    image(out, "x", [{"opt/app/bin/solver": binary}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["cpu.target"] == target
    assert doc[0]["proposed"]["cpu.target"]["evidence"][0]["section"] == section


@need_gcc
def test_no_evidence_is_unknown_never_a_guess(build, tmp_path):
    binary = compile_c(build, "app-plain", "-march=x86-64-v3")     # no -mneeded, no -g, no switches
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/bin/app": binary}])
    doc = infer(wrap_index(out, "x"))
    assert "cpu.target" not in doc[0]["proposed"]
    assert "cpu.target" in doc[0]["unknown"]


@need_gcc
def test_whiteouts_and_path_scope(build, tmp_path):
    v4 = compile_c(build, "w-v4", "-march=x86-64-v4", "-mneeded")
    v2 = compile_c(build, "w-v2", "-march=x86-64-v2", "-mneeded")
    out = str(tmp_path / "l")
    image(out, "x", [{"opt/a/fast": v4, "opt/b/slow": v2}, {"opt/a/fast": None}])
    ref = wrap_index(out, "x")
    assert proposed(infer(ref))["cpu.target"] == "x86_64_v2"          # the v4 binary was deleted
    image(out, "y", [{"opt/a/fast": v4, "opt/b/slow": v2}])
    ref = wrap_index(out, "y")
    assert proposed(infer(ref))["cpu.target"] == "x86_64_v4"
    assert proposed(infer(ref, "--path", "/opt/b"))["cpu.target"] == "x86_64_v2"


@need_gcc
def test_glibc_own_and_needed(build, tmp_path):
    import platform as pyplatform
    binary = compile_c(build, "g", "-march=x86-64-v2", "-mneeded")
    libc = open("/lib/x86_64-linux-gnu/libc.so.6", "rb").read()
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/lib/x86_64-linux-gnu/libc.so.6": libc, "usr/bin/app": binary}])
    doc = infer(wrap_index(out, "x"))
    assert proposed(doc)["libc.glibc"] == pyplatform.libc_ver()[1]
    assert any("needs GLIBC_" in e["value"] for e in doc[0]["proposed"]["libc.glibc"]["evidence"])


@pytest.mark.skipif(not (shutil.which("mpicc.openmpi") and shutil.which("mpicc.mpich")), reason="no MPI compilers")
@pytest.mark.parametrize("flavour,lib,abi", [("openmpi", "libmpi.so.40", "openmpi"),
                                             ("mpich", "libmpich.so.12", "mpich")])
def test_mpi_from_dt_needed_and_the_shipped_library(tmp_path, flavour, lib, abi):
    (tmp_path / "m.c").write_text(MPI_SRC)
    sh(f"mpicc.{flavour}", "-o", "m", "m.c", cwd=tmp_path)
    real = os.path.realpath(f"/usr/lib/x86_64-linux-gnu/{lib}")
    version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "openmpi-bin" if flavour == "openmpi" else "mpich"],
                             capture_output=True, text=True).stdout.split("-")[0]
    out = str(tmp_path / "l")
    image(out, "x", [{"opt/app/m": (tmp_path / "m").read_bytes(),
                      "usr/lib/x86_64-linux-gnu/" + os.path.basename(real): open(real, "rb").read()}])
    doc = infer(wrap_index(out, "x"))
    p = proposed(doc)
    assert (p["mpi.abi"], p["mpi.implementation"], p["mpi.version"]) == (abi, flavour, version)
    assert doc[0]["proposed"]["mpi.abi"]["evidence"][0] == {"file": "/opt/app/m", "section": ".dynamic (DT_NEEDED)",
                                                            "value": lib}


@pytest.mark.skipif(NVCC is None, reason="nvcc not installed (the machine image ships it; skipped elsewhere)")
def test_cuda_sass_and_ptx_from_fatbins(tmp_path):
    (tmp_path / "k.cu").write_text(CU_SRC)
    sh(NVCC, "-gencode", "arch=compute_80,code=sm_80", "-gencode", "arch=compute_90,code=[sm_90,compute_90]",
       "-o", "k", "k.cu", cwd=tmp_path)
    release = subprocess.run([NVCC, "--version"], capture_output=True, text=True).stdout
    import re
    cuda = re.search(r"release (\d+\.\d+)", release).group(1)
    out = str(tmp_path / "l")
    image(out, "x", [{"opt/app/k": (tmp_path / "k").read_bytes()}])
    doc = infer(wrap_index(out, "x"))
    p = proposed(doc)
    assert p["gpu.cuda.arch"] == "sm_80,sm_90,compute_90"
    assert p["gpu.cuda.version"] == cuda


def test_provider_plugins_named_by_file(tmp_path):
    some_elf = open("/bin/true", "rb").read()
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/lib/x86_64-linux-gnu/libfabric/libefa-fi.so": some_elf,
                      "usr/lib/x86_64-linux-gnu/libfabric/libcxi-fi.so": some_elf}])
    assert proposed(infer(wrap_index(out, "x")))["fabric.providers"] == "cxi,efa"


@need_gcc
def test_write_applies_and_handwritten_wins(build, tmp_path):
    v3 = compile_c(build, "a3", "-march=x86-64-v3", "-mneeded")
    v4 = compile_c(build, "a4", "-march=x86-64-v4", "-mneeded")
    src = str(tmp_path / "src")
    image(src, "v3", [{"usr/bin/app": v3}])
    image(src, "v4", [{"usr/bin/app": v4}])
    dest = f"oci:{tmp_path}/out:1"
    proc = run_compat("annotate", dest, "--infer", "--write", "--variant", f"oci:{src}:v3",
                      "--variant", f"oci:{src}:v4", "cpu.target=zen4", check=0)
    assert "hand-written 'zen4', inferred 'x86_64_v4' (kept hand-written)" in proc.stderr
    raw = json.loads(subprocess.run(["skopeo", "inspect", "--raw", dest], capture_output=True, text=True).stdout) \
        if shutil.which("skopeo") else None
    doc = json.loads(run_compat("annotate", dest, "--set", "all", "weight=0", "--dry-run", check=0).stdout)
    anns = [m.get("annotations", {}).get("org.hpc-compat.cpu.target") for m in doc["manifests"]]
    assert anns == ["x86_64_v3", "zen4"]
    if raw is not None:
        assert [m.get("annotations", {}).get("org.hpc-compat.cpu.target") for m in raw["manifests"]] == anns
    # the written annotations drive selection: a v3-only host (zen2) gets the v3 build
    got = run_compat("select", dest, "--format", "digest", "--assume", "cpu.target=zen2", check=0).stdout.strip()
    assert got == doc["manifests"][0]["digest"]
    # --prefer-inferred replaces the hand-written value
    proc = run_compat("annotate", dest + "x", "--infer", "--write", "--prefer-inferred", "--variant",
                      f"oci:{src}:v4", "cpu.target=zen4", check=0)
    doc = json.loads(run_compat("annotate", dest + "x", "--set", "all", "weight=0", "--dry-run", check=0).stdout)
    assert doc["manifests"][0]["annotations"]["org.hpc-compat.cpu.target"] == "x86_64_v4"
