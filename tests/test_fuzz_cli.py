"""The exit-code contract under fuzzing. Every parser that untrusted input reaches is driven
through the command line, in process (``compat.cli.main.main``), with inputs hypothesis
generates from a valid document by replacing parts of it with arbitrary JSON values or text,
under an address-space cap of 2 GB above what the test process already maps. Every run must
end in a documented exit code (0/1/2/3), never an ``internal error``; exit 2 is one line.

Fixed budget: ``derandomize`` and a small ``max_examples`` per parser, so CI is repeatable."""
import contextlib
import copy
import hashlib
import io
import json
import os
import resource

import pytest
import yaml
from hypothesis import HealthCheck, given, settings, strategies as st

from compat.cli.main import main
from conftest import FIXTURES, HOSTS
from helpers import EXIT_CODES, HOSTILE_MEMORY

ZEN3 = os.path.join(HOSTS, "slingshot-zen3")
DEMO = os.path.join(FIXTURES, "demo")
BUDGET = settings(max_examples=40, deadline=None, derandomize=True, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                         HealthCheck.data_too_large])

# -- the contract ---------------------------------------------------------------------------------


def _mapped_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmSize in /proc/self/status")


@contextlib.contextmanager
def memory_cap(extra: int = HOSTILE_MEMORY):
    """RLIMIT_AS lowered to what is mapped now plus ``extra``, and restored afterwards (a
    soft limit may be raised again up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = _mapped_bytes() + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with memory_cap(), contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    text = err.getvalue()
    assert code in EXIT_CODES, (code, argv, text[-2000:])
    assert "internal error" not in text and "Traceback" not in text, (argv, text[-2000:])
    if code == 2:
        assert len(text.strip().splitlines()) == 1, (argv, text[-2000:])
    return code, out.getvalue(), text


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("COMPAT_DEBUG", raising=False)


def test_the_memory_cap_holds():
    """The cap is real: an allocation past it fails inside, and everything works after."""
    with pytest.raises(MemoryError):
        with memory_cap(256 << 20):
            bytearray(512 << 20)
    assert len(bytearray(512 << 20)) == 512 << 20


# -- generators -----------------------------------------------------------------------------------

SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=24),
                    st.sampled_from(["", "8", "v8.7", "sha256:../../etc/passwd", "9.0", "\x1b[31m", "-3",
                                     "1" * 5000, "linux", "amd64", "compute_90a"]))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                      st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                    max_leaves=12)


@st.composite
def mutated(draw, base):
    """``base`` with one to three parts (found by a random walk) replaced by arbitrary JSON."""
    doc = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        parent, key, node = None, None, doc
        while isinstance(node, (dict, list)) and node and draw(st.booleans()):
            k = draw(st.sampled_from(sorted(node) if isinstance(node, dict) else list(range(len(node)))))
            parent, key, node = node, k, node[k]
        if parent is None:
            doc = draw(JSON)
            continue
        if isinstance(parent, dict) and draw(st.booleans()):
            del parent[key]
        else:
            parent[key] = draw(JSON)
    return doc


def _load(path):
    with open(path, "rb") as fh:
        return json.load(fh)


def _demo_index():
    top = _load(os.path.join(DEMO, "index.json"))["manifests"][0]
    return _load(os.path.join(DEMO, "blobs", "sha256", top["digest"][7:]))


class Layout:
    """The demo's blobs, with one index written per example and tagged ``t``."""

    def __init__(self, root):
        self.root = str(root)
        os.makedirs(os.path.join(self.root, "blobs", "sha256"), exist_ok=True)
        for name in os.listdir(os.path.join(DEMO, "blobs", "sha256")):
            dst = os.path.join(self.root, "blobs", "sha256", name)
            if not os.path.exists(dst):
                os.symlink(os.path.join(DEMO, "blobs", "sha256", name), dst)
        with open(os.path.join(self.root, "oci-layout"), "w") as fh:
            fh.write('{"imageLayoutVersion": "1.0.0"}')

    def blob(self, data: bytes) -> str:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        path = os.path.join(self.root, "blobs", "sha256", digest[7:])
        if not os.path.exists(path):
            with open(path, "wb") as fh:
                fh.write(data)
        return digest

    def tag(self, index_bytes: bytes, extra=()) -> str:
        entries = [{"mediaType": "application/vnd.oci.image.index.v1+json", "digest": self.blob(index_bytes),
                    "size": len(index_bytes), "annotations": {"org.opencontainers.image.ref.name": "t"}}]
        with open(os.path.join(self.root, "index.json"), "w") as fh:
            json.dump({"schemaVersion": 2, "manifests": entries + list(extra)}, fh)
        return f"oci:{self.root}:t"


# -- one test per parser ----------------------------------------------------------------------------

def _shared(factory, name, _dirs={}):
    """One directory per parser for all its examples (hypothesis reruns the test body)."""
    if name not in _dirs:
        _dirs[name] = factory.mktemp(name)
    return _dirs[name]


@BUDGET
@given(doc=mutated(_demo_index()))
def test_index_documents_keep_the_exit_code_contract(tmp_path_factory, doc):
    layout = Layout(_shared(tmp_path_factory, "index"))
    ref = layout.tag(json.dumps(doc).encode())
    code, out, _ = cli("select", ref, "--sysroot", ZEN3, "--no-referrers", "--explain")
    if code == 0:
        assert "@sha256:" in out
    cli("validate", ref)


def _profile():
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["detect", "--json", "--sysroot", ZEN3]) == 0
    return json.loads(out.getvalue())


@BUDGET
@given(doc=mutated(_profile()))
def test_host_profiles_keep_the_exit_code_contract(tmp_path_factory, doc):
    path = os.path.join(_shared(tmp_path_factory, "host"), "node.json")
    with open(path, "w") as fh:
        json.dump(doc, fh)
    cli("select", f"oci:{DEMO}", "--host", path, "--no-referrers")
    cli("detect", "--host", path)


NODE_FEATURE = {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature",
                "metadata": {"name": "n1"},
                "spec": {"features": {
                    "flags": {"cpu.cpuid": {"elements": {"AVX2": {}, "X86_64_V3": {}}}},
                    "attributes": {"kernel.version": {"elements": {"major": "6", "minor": "1", "revision": "0",
                                                                   "full": "6.1.0"}},
                                   "local.feature": {"elements": {"hpc-compat.org/gpu.nvidia.count": "4",
                                                                  "hpc-compat.org/gpu.nvidia.cc": "9.0"}}},
                    "instances": {"pci.device": {"elements": [{"attributes": {"vendor": "10de", "class": "0302"}}]}}},
                    "labels": {}}}


@BUDGET
@given(doc=mutated(NODE_FEATURE), as_yaml=st.booleans())
def test_nfd_node_features_keep_the_exit_code_contract(tmp_path_factory, doc, as_yaml):
    path = os.path.join(_shared(tmp_path_factory, "nodefeature"), "node.yaml")
    with open(path, "w") as fh:
        fh.write(yaml.safe_dump(doc) if as_yaml else json.dumps(doc))
    cli("select", f"oci:{DEMO}", "--host", path, "--no-referrers")


VARIANTS = {"index": "oci:out:app", "variants": [
    {"ref": "oci:src:generic"},
    {"ref": "oci:src:zen4", "annotations": {"cpu.target": "zen4", "description": "Zen 4"}},
    {"ref": "oci:src:cuda", "annotations": {"gpu.cuda.version": "12.4", "gpu.cuda.arch": "sm_90a,compute_90",
                                            "mpi.implementation": "openmpi", "mpi.mode": "bind"}}]}


@BUDGET
@given(doc=mutated(VARIANTS), raw=st.one_of(st.none(), st.text(max_size=200)))
def test_variants_files_keep_the_exit_code_contract(tmp_path_factory, doc, raw):
    path = os.path.join(_shared(tmp_path_factory, "variants"), "variants.yaml")
    with open(path, "w") as fh:
        fh.write(raw if raw is not None else yaml.safe_dump(doc))
    cli("validate", path)


NFD_SPEC = {"version": "v1alpha1", "compatibilities": [{
    "description": "v3 with AVX2", "weight": 2, "tag": "cpu",
    "rules": [{"name": "v3", "matchFeatures": [{"feature": "cpu.cpuid",
                                                "matchExpressions": {"X86_64_V3": {"op": "Exists"},
                                                                     "AVX2": {"op": "In", "value": ["x"]}}}],
               "varsTemplate": "{{ range .cpu.cpuid }}{{ .Name }}=1\n{{ end }}"},
              {"name": "kernel", "matchAny": [{"matchFeatures": [
                  {"feature": "kernel.version",
                   "matchExpressions": {"major": {"op": "Gt", "value": ["4"]},
                                        "full": {"op": "InRegexp", "value": ["^6\\."]}}}]}]}]}]}


@BUDGET
@given(spec=mutated(NFD_SPEC))
def test_nfd_artifacts_keep_the_exit_code_contract(tmp_path_factory, spec):
    layout = Layout(_shared(tmp_path_factory, "artifact"))
    index = _demo_index()
    subject = index["manifests"][0]
    layer = yaml.safe_dump(spec).encode()
    empty = layout.blob(b"{}")
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "artifactType": "application/vnd.nfd.image-compatibility.v1alpha1",
                      "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
                      "layers": [{"mediaType": "application/vnd.nfd.image-compatibility.spec.v1alpha1+yaml",
                                  "digest": layout.blob(layer), "size": len(layer)}],
                      "subject": {k: subject[k] for k in ("mediaType", "digest", "size")}}).encode()
    artifact = {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": layout.blob(man),
                "size": len(man), "artifactType": "application/vnd.nfd.image-compatibility.v1alpha1"}
    ref = layout.tag(json.dumps(index).encode(), [artifact])
    cli("select", ref, "--sysroot", ZEN3, "--referrers", "--explain")
    cli("check", ref, "--sysroot", ZEN3, "--json")


ASSUME_KEYS = ["os.arch", "os.variant", "os.kernel", "cpu.target", "gpu.vendor", "gpu.count", "gpu.cc",
               "gpu.driver", "gpu.cuda.version", "gpu.amd.arch", "mpi.implementation", "mpi.version",
               "mpi.abi", "mpi.pmi", "fabric", "fabric.providers"]


@BUDGET
@given(pairs=st.lists(st.tuples(st.one_of(st.sampled_from(ASSUME_KEYS), st.text(max_size=12)),
                                st.one_of(st.text(max_size=30), SCALARS.map(str))), min_size=1, max_size=4))
def test_assumptions_keep_the_exit_code_contract(pairs):
    args = [a for k, v in pairs for a in ("--assume", f"{k}={v}")]
    cli("select", f"oci:{DEMO}", "--sysroot", ZEN3, "--no-referrers", *args)


@BUDGET
@given(platform=st.one_of(st.text(max_size=30),
                          st.builds(lambda o, a, v: f"{o}/{a}/{v}", st.sampled_from(["linux", "LINUX", "windows", ""]),
                                    st.sampled_from(["amd64", "arm64", "x86_64", "aarch64", "arm", ""]),
                                    st.text("v0123456789.x", max_size=6))))
def test_platforms_keep_the_exit_code_contract(platform):
    cli("select", f"oci:{DEMO}", "--sysroot", ZEN3, "--no-referrers", "--platform", platform)


@BUDGET
@given(tail=st.text(max_size=60), layout=st.booleans())
def test_references_keep_the_exit_code_contract(tail, layout):
    """Only references that cannot leave this machine: layouts, and a closed loopback port."""
    ref = f"oci:{tail}" if layout else f"127.0.0.1:9/{tail}"
    cli("select", ref, "--sysroot", ZEN3, "--no-referrers", "--timeout", "1", "--plain-http")


_VALUE_PARTS = st.one_of(st.sampled_from(["sm_", "compute_", ">=", "<", ",", ".", "a", "f", "v", " ", "-", "x86_64_v",
                                          "zen", "openmpi", "pmix", "gfx", "\u0669"]),
                         st.builds(lambda d, n: d * n, st.sampled_from("0179"), st.sampled_from([1, 2, 3, 19, 4400])))
_VALUES = st.lists(_VALUE_PARTS, min_size=1, max_size=6).map("".join)


def _vocabulary_keys():
    from compat.vocab.annotations import KEYS
    return sorted(KEYS)


@BUDGET
@given(annotations=st.dictionaries(st.sampled_from(_vocabulary_keys()), _VALUES, min_size=1, max_size=4))
def test_annotation_values_keep_the_exit_code_contract(tmp_path_factory, annotations):
    """Values built from the grammars' own pieces, including digit runs of thousands (Python
    refuses to convert more than 4,300 digits): select excludes, validate reports."""
    index = _demo_index()
    index["manifests"][0]["annotations"] = {"org.hpc-compat." + k: v for k, v in annotations.items()}
    ref = Layout(_shared(tmp_path_factory, "values")).tag(json.dumps(index).encode())
    cli("select", ref, "--sysroot", ZEN3, "--no-referrers", "--explain")
    cli("validate", ref)
