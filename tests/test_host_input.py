"""Host input is bad input, never an internal error: hostile --host profiles, --assume values,
and random JSON through the profile loader (exit 0/2, one line, no traceback)."""
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import compat
from compat import limits
from compat.errors import BadInput
from compat.host import assume as A
from conftest import FIXTURES, HOSTS
from helpers import run_hostile

DEMO = "oci:" + os.path.join(FIXTURES, "demo")
BASE = {"schema": "compat.host/v1", "os": {"arch": "amd64"}, "cpu": {}, "gpus": [], "fabrics": [], "mpi": [],
        "sources": {}}


def _with(**changes):
    return json.dumps({**BASE, **changes})


HOSTILE_PROFILES = {
    "schema-only": '{"schema": "compat.host/v1"}',
    "cc-without-minor": _with(gpus=[{"vendor": "nvidia", "cc": "9"}]),
    "pmi-number": _with(pmi=7),
    "fabric-empty-object": _with(fabrics=[{}]),
    "gpus-100k": _with(gpus=[{"vendor": "nvidia"}] * 100_000),
    "gpus-65": _with(gpus=[{"vendor": "nvidia", "index": i % 64} for i in range(65)]),
    "os-string": _with(os="linux"),
    "features-string": _with(cpu={"features": "avx2"}),
    "level-string": _with(cpu={"x86_64_level": "4"}),
    "level-bool": _with(cpu={"x86_64_level": True}),
    "sources-list": _with(sources=[]),
    "mpi-pmi-string": _with(mpi=[{"implementation": "openmpi", "pmi": "pmix"}]),
    "mpi-unknown": _with(mpi=[{"implementation": "lam"}]),
    "providers-string": _with(libfabric={"providers": "verbs"}),
    "runtime-name-number": _with(runtimes=[{"name": 5}]),
    "memory-string": _with(gpus=[{"vendor": "nvidia", "memory_mib": "80"}]),
    "index-string": _with(gpus=[{"vendor": "nvidia", "index": "0"}]),
    "glibc-number": _with(os={"glibc": 2.35}),
    "variant-x": _with(os={"arch": "amd64", "variant": "x"}),
    "model-5000-chars": _with(cpu={"model": "x" * 5000}),
    "escape-in-key": _with(sources={"\x1b[2J": "x"}),
    "list": "[1, 2]",
    "string": '"x"',
    "nan": _with(cpu={"x86_64_level": float("nan")}),
    "infinity": json.dumps(BASE)[:-1] + ', "pmi": 1e400}',
    "5000-digit-integer": json.dumps(BASE)[:-1] + ', "pmi": ' + "9" * 5000 + "}",
    "empty": "",
    "over-16-mib": '{"schema": "compat.host/v1", "x": "' + "a" * (limits.HOST_FILE_BYTES + 1) + '"}',
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROFILES))
def test_hostile_host_profile_is_bad_input(tmp_path, name):
    f = tmp_path / "node.json"
    f.write_text(HOSTILE_PROFILES[name])
    proc = run_hostile("select", DEMO, "--host", str(f))
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"compat: --host {f}: ")
    assert "\x1b" not in proc.stderr


def test_hostile_profile_names_the_first_failing_path(tmp_path):
    f = tmp_path / "node.json"
    f.write_text(HOSTILE_PROFILES["cc-without-minor"])
    assert "$.gpus[0].cc: " in run_hostile("detect", "--host", str(f)).stderr


@pytest.mark.parametrize("content", [b"\x00\xff\xfe binary", b"[" * 100_000 + b"]" * 100_000, b"{" * 70 + b"}" * 70])
def test_load_host_refuses_binary_and_deep_files(tmp_path, content):
    f = tmp_path / "node.json"
    f.write_bytes(content)
    with pytest.raises(BadInput, match=r"^host profile "):
        compat.load_host(str(f))


def test_load_host_refuses_a_fifo_and_a_device(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (str(fifo), "/dev/zero"):
        with pytest.raises(BadInput, match="not a regular file"):
            compat.load_host(path)


# -- --assume -------------------------------------------------------------------------------

@pytest.mark.parametrize("item,wanted", [
    ("os.variant=x", "an OCI variant"),
    ("gpu.count=-3", "a whole number of GPUs from 0 to 64"),
    ("gpu.count=1000000000", "a whole number of GPUs from 0 to 64"),
    ("gpu.count=65", "a whole number of GPUs from 0 to 64"),
    ("gpu.count=two", "a whole number of GPUs from 0 to 64"),
    ("gpu.cc=abc", "a compute capability"),
    ("gpu.driver=latest", "a driver version"),
    ("gpu.cuda.version=twelve", "a CUDA version"),
    ("gpu.amd.arch=gfx", "an AMD gfx target"),
    ("os.glibc=new", "a glibc version"),
    ("os.kernel=" + "9" * 2000, "at most 1024 characters"),
    ("mpi.version=\x1b[31m", "an MPI version"),
    ("fabric=carrier-pigeon", "a list of infiniband"),
    ("mpi.pmi=pmi9", "a list of pmi1, pmi2, pmix"),
])
def test_assume_value_is_checked_and_named(item, wanted):
    proc = run_hostile("detect", "--assume", item)
    assert proc.returncode == 2
    key, _, value = item.partition("=")
    line = proc.stderr.strip()
    assert line.startswith(f"compat: --assume {key}=") and f"wanted {wanted}" in line, line
    assert "--assume --assume" not in line and "\x1b" not in line


def test_assume_count_zero_means_none_of_that_vendor():
    h = compat.detect(sysroot=os.path.join(HOSTS, "nvidia-4xh100-nonvml"), assume=["gpu.count=0"])
    assert h.gpus_of("nvidia") == ()


def test_assume_gpu_count_is_bounded_not_allocated():
    proc = run_hostile("select", DEMO, "--assume", "gpu.count=1000000000", memory=1 << 30)
    assert proc.returncode == 2


def test_assume_driver_alone_summary_says_arch_unknown():
    proc = run_hostile("select", DEMO, "--explain", "--assume", "gpu.driver=550.54.14",
                       "--assume", "gpu.vendor=nvidia")
    host_line = next(line for line in proc.stdout.splitlines() if line.startswith("host "))
    assert "1x nvidia arch unknown, driver 550.54.14 (CUDA 12.4)" in host_line
    assert "nvidia ," not in host_line
    detect = run_hostile("detect", "--assume", "gpu.driver=550.54.14").stdout
    assert "nvidia model unknown, arch unknown, driver 550.54.14" in detect


ASSUME_ITEMS = st.one_of(
    st.tuples(st.sampled_from(A.KEYS), st.text(max_size=12)).map(lambda kv: f"{kv[0]}={kv[1]}"),
    st.tuples(st.sampled_from(A.KEYS), st.from_regex(r"[0-9a-z.,_-]{0,8}", fullmatch=True)).map(
        lambda kv: f"{kv[0]}={kv[1]}"),
    st.text(max_size=20))


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ASSUME_ITEMS, max_size=4))
def test_assume_parsing_fuzz_is_bad_input_or_a_valid_host(items):
    base = compat.host.Host.from_dict({**BASE, "gpus": [{"vendor": "nvidia", "cc": "8.0"}]})
    try:
        host = A.apply_checked(base, A.parse(items))
    except BadInput as exc:
        assert "\n" not in str(exc) and str(exc).startswith("--assume ")
        return
    from compat.schema import first_error
    assert first_error(host.to_dict(), "host") is None


JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5)),
                    lambda kids: st.one_of(st.lists(kids, max_size=3),
                                           st.dictionaries(st.sampled_from(list(BASE) + ["gpus", "pmi", "x"]),
                                                           kids, max_size=4)),
                    max_leaves=12)


@settings(max_examples=200, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(JSON, st.booleans())
def test_profile_loader_fuzz_is_a_host_or_bad_input(tmp_path_factory, doc, merged):
    if merged and isinstance(doc, dict):
        doc = {**BASE, **doc}
    f = tmp_path_factory.mktemp("fuzz") / "node.json"
    f.write_text(json.dumps(doc))
    try:
        host = compat.load_host(str(f))
    except BadInput as exc:
        assert "\n" not in str(exc)
        return
    assert host.to_dict()["schema"] == "compat.host/v1"
