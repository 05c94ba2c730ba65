"""The NVML path with the real pynvml code, against a stand-in libnvidia-ml.so.1.

The stand-in is a small C library compiled here; it answers like one H100 SXM (compute
capability 9.0) under driver 550.54.14, whose CUDA version is 12.4, the values NVML's
documentation gives for those calls (nvmlSystemGetCudaDriverVersion_v2 -> 12040).
"""
import shutil
import subprocess
import textwrap

import pytest

from conftest import detect_json

STUB = textwrap.dedent(r"""
    #include <string.h>
    typedef int nvmlReturn_t;
    typedef void *nvmlDevice_t;
    typedef struct { unsigned long long total, free, used; } nvmlMemory_t;
    static int dev_tag[8];
    static unsigned count = 1;
    nvmlReturn_t nvmlInitWithFlags(unsigned flags) { return 0; }
    nvmlReturn_t nvmlInit_v2(void) { return 0; }
    nvmlReturn_t nvmlShutdown(void) { return 0; }
    const char *nvmlErrorString(nvmlReturn_t r) { return r ? "Not Supported" : "Success"; }
    nvmlReturn_t nvmlSystemGetDriverVersion(char *v, unsigned n) { strncpy(v, "550.54.14", n); return 0; }
    nvmlReturn_t nvmlSystemGetCudaDriverVersion_v2(int *v) { *v = 12040; return 0; }
    nvmlReturn_t nvmlSystemGetCudaDriverVersion(int *v) { *v = 12040; return 0; }
    nvmlReturn_t nvmlDeviceGetCount_v2(unsigned *c) { *c = count; return 0; }
    nvmlReturn_t nvmlDeviceGetHandleByIndex_v2(unsigned i, nvmlDevice_t *d) {
        if (i >= count) return 2; *d = &dev_tag[i]; return 0; }
    nvmlReturn_t nvmlDeviceGetName(nvmlDevice_t d, char *name, unsigned n) {
        strncpy(name, "NVIDIA H100 80GB HBM3", n); return 0; }
    nvmlReturn_t nvmlDeviceGetCudaComputeCapability(nvmlDevice_t d, int *ma, int *mi) {
        *ma = 9; *mi = 0; return 0; }
    nvmlReturn_t nvmlDeviceGetMemoryInfo(nvmlDevice_t d, nvmlMemory_t *m) {
        m->total = 85520809984ULL; m->free = m->total; m->used = 0; return 0; }
    nvmlReturn_t nvmlDeviceGetMigMode(nvmlDevice_t d, unsigned *cur, unsigned *pend) {
        *cur = 1; *pend = 1; return 0; }
    __attribute__((constructor)) static void init(void) {
        const char *c = getenv("STUB_GPU_COUNT"); if (c) count = (unsigned) atoi(c); }
""").replace("#include <string.h>", "#include <string.h>\n#include <stdlib.h>")


@pytest.fixture(scope="module")
def stub_dir(tmp_path_factory):
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build the NVML stand-in")
    d = tmp_path_factory.mktemp("nvml")
    src = d / "nvml_stub.c"
    src.write_text(STUB)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(d / "libnvidia-ml.so.1"), str(src)], check=True)
    return str(d)


def test_nvml_answers_like_an_h100(stub_dir):
    prof = detect_json(env={"LD_LIBRARY_PATH": stub_dir, "STUB_GPU_COUNT": "4"}, process=True)
    assert len(prof["gpus"]) == 4
    g = prof["gpus"][0]
    assert g["vendor"] == "nvidia" and g["model"] == "NVIDIA H100 80GB HBM3"
    assert (g["cc"], g["driver"], g["cuda"]) == ("9.0", "550.54.14", "12.4")
    assert g["memory_mib"] == 85520809984 // (1 << 20)
    assert g["mig"] is True
    assert prof["sources"]["gpus.nvidia"].startswith("NVML")


def test_without_nvml_library_detection_falls_back(tmp_path):
    prof = detect_json(env={"LD_LIBRARY_PATH": str(tmp_path)}, process=True)
    if shutil.which("nvidia-smi"):
        pytest.skip("a real NVIDIA driver is installed here")
    assert prof["sources"]["gpu.nvml"] == "unavailable: libnvidia-ml.so.1 not found"


def test_nvml_absent_in_process():
    """The same fall-back, in this process: NVML's absence is a source, not an error."""
    import ctypes

    from compat.host import gpu
    try:
        ctypes.CDLL("libnvidia-ml.so.1")
        pytest.skip("an NVML library is loadable here")
    except OSError:
        pass
    sources = {}
    assert gpu.nvidia_nvml(sources) is None
    assert sources == {"gpu.nvml": "unavailable: libnvidia-ml.so.1 not found"}
