"""Variants files: read bounded, version-like values as written, value types defined (string,
integer, a list for the comma-list keys), everything else refused with the key named; the
parser returns a result or BadInput for any structure."""
import json
import os
import sys
import tempfile

import pytest
import yaml
from hypothesis import given, settings, strategies as st

from conftest import FIXTURES, run_compat
from helpers import run_hostile

sys.path.insert(0, FIXTURES)
from build_demo import build_variant_images  # noqa: E402

from helpers import P  # noqa: E402


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    d = tmp_path_factory.mktemp("vfile")
    build_variant_images(str(d / "src"))
    return str(d / "src")


def dry_run(src, tmp_path, body):
    f = tmp_path / "v.yaml"
    f.write_text(f"index: oci:{tmp_path}/app:1\nvariants:\n  - ref: oci:{src}:generic\n"
                 f"  - ref: oci:{src}:cuda12.4\n    annotations:\n" + body)
    return run_compat("annotate", "--variants", str(f), "--dry-run")


def test_unquoted_versions_are_read_as_written(src, tmp_path):
    proc = dry_run(src, tmp_path, "      gpu.cuda.version: 12.10\n      mpi.version: 4.10\n"
                                  "      mpi.implementation: openmpi\n      libc.glibc: 2.30\n")
    assert proc.returncode == 0, proc.stderr
    ann = json.loads(proc.stdout)["manifests"][1]["annotations"]
    assert ann[P + "gpu.cuda.version"] == "12.10" and ann[P + "mpi.version"] == "4.10"
    assert ann[P + "libc.glibc"] == "2.30"


def test_unquoted_versions_are_read_as_written_by_validate(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("variants:\n  - ref: r/a:1\n    annotations: {gpu.cuda.version: 12.10, gpu.cuda.arch: sm_120}\n")
    from compat.author import variants
    (v,), _, _, problems = variants.load_file(str(f))
    assert problems == [] and v.annotations[P + "gpu.cuda.version"] == "12.10"
    assert run_compat("validate", str(f)).returncode == 0


def test_integers_and_lists_for_comma_list_keys_are_accepted(src, tmp_path):
    proc = dry_run(src, tmp_path, "      weight: -5\n      gpu.cuda.version: 12\n"
                                  "      gpu.cuda.arch: [sm_80, sm_90, compute_90]\n      fabric: [infiniband, tcp]\n")
    assert proc.returncode == 0, proc.stderr
    ann = json.loads(proc.stdout)["manifests"][1]["annotations"]
    assert ann == {P + "weight": "-5", P + "gpu.cuda.version": "12",
                   P + "gpu.cuda.arch": "sm_80,sm_90,compute_90", P + "fabric": "infiniband,tcp"}


@pytest.mark.parametrize("body,message", [
    ("gpu.vendor: no", "org.hpc-compat.gpu.vendor: read as the boolean false"),
    ("description: yes", "org.hpc-compat.description: read as the boolean true"),
    ("description:", "org.hpc-compat.description: no value"),
    ("description: 2024-01-01", "org.hpc-compat.description: read as a date"),
    ("cpu.target: [zen4]", "org.hpc-compat.cpu.target: a list is accepted only for the comma-list keys"),
    ("gpu.cuda.arch: []", "org.hpc-compat.gpu.cuda.arch: empty list"),
    ("gpu.cuda.arch: [[sm_80]]", "org.hpc-compat.gpu.cuda.arch: list items must be strings"),
    ("gpu.cuda.arch: [true]", "org.hpc-compat.gpu.cuda.arch: read as the boolean true"),
    ("mpi.version: {major: 4}", "org.hpc-compat.mpi.version: expected a string or an integer, got a mapping"),
])
def test_other_value_types_are_refused_with_the_key_named(src, tmp_path, body, message):
    proc = dry_run(src, tmp_path, "      " + body + "\n")
    assert proc.returncode == 1
    assert f"compat: error: {tmp_path}/v.yaml: #2 (oci:{src}:cuda12.4): {message}" in proc.stderr
    assert "nothing was pushed" in proc.stderr and "Traceback" not in proc.stderr


def test_json_fraction_is_refused_with_the_key_named(tmp_path):
    f = tmp_path / "v.json"
    f.write_text('{"variants": [{"ref": "r/a:1", "annotations": {"gpu.cuda.version": 12.10}}]}')
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1
    assert "error: #1 (r/a:1): org.hpc-compat.gpu.cuda.version: the number 12.1 no longer says how it was written" \
        in proc.stdout


def test_schema_errors_name_the_variant_by_position(tmp_path):
    f = tmp_path / "v.yaml"
    f.write_text("variants:\n  - ref: r/a:1\n  - ref: r/a:2\n    platform: {os: linux}\n")
    proc = run_compat("validate", str(f))
    assert proc.returncode == 1
    assert "error: #2 (r/a:2): schema: $.platform: 'architecture' is a required property" in proc.stdout


@pytest.mark.parametrize("what", ["fifo", "too-large", "billion-laughs", "not-utf8", "deep"])
def test_hostile_variants_files_are_bad_input(tmp_path, what):
    f = tmp_path / "v.yaml"
    if what == "fifo":
        os.mkfifo(f)
    elif what == "too-large":
        with open(f, "wb") as fh:
            fh.truncate(5 << 20)
    elif what == "billion-laughs":
        lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
        lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
        f.write_text("\n".join(lines) + "\nvariants: *a9\n")
    elif what == "not-utf8":
        f.write_bytes(b"variants:\n  - ref: \xff\xfe\n")
    else:
        f.write_text("variants: " + "[" * 5000 + "]" * 5000 + "\n")
    for args in (["annotate", "oci:" + str(tmp_path / "o") + ":1", "--variants", str(f)], ["validate", str(f)]):
        proc = run_hostile(*args)
        assert proc.returncode == 2 and not os.path.exists(tmp_path / "o"), proc.stderr


# -- the parser: any structure gives a result or BadInput -------------------------------------------

_scalar = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=False),
                    st.text(max_size=12), st.sampled_from(["12.10", "zen4", "sm_80", "yes", "~", "1e3", "0x1F"]))
_keys = st.one_of(st.text(max_size=8), st.sampled_from(["ref", "annotations", "platform", "variants", "index",
                                                       "cpu.target", "gpu.cuda.arch", "weight", "os",
                                                       "architecture", "org.hpc-compat.weight"]))
_tree = st.recursive(_scalar, lambda kids: st.one_of(st.lists(kids, max_size=4),
                                                      st.dictionaries(_keys, kids, max_size=4)), max_leaves=20)
_variant = st.fixed_dictionaries({"ref": st.one_of(st.text(min_size=1, max_size=10), _tree)},
                                 optional={"annotations": st.one_of(st.dictionaries(_keys, _tree, max_size=5), _tree),
                                           "platform": _tree})
_document = st.one_of(_tree, st.fixed_dictionaries({"variants": st.one_of(st.lists(_variant, max_size=4), _tree)},
                                                   optional={"index": _tree, "annotations": _tree}))
_annotation_key = st.sampled_from(["cpu.target", "gpu.cuda.arch", "gpu.cuda.version", "weight", "description",
                                   "fabric", "org.hpc-compat.mpi.version", "org.opencontainers.image.title"])
_plausible = st.fixed_dictionaries(
    {"variants": st.lists(st.fixed_dictionaries(
        {"ref": st.text(min_size=1, max_size=10)},
        optional={"annotations": st.dictionaries(_annotation_key, st.one_of(
            _scalar, st.lists(st.one_of(st.text(max_size=6), st.integers(0, 99)), max_size=3)), max_size=4)}),
        min_size=1, max_size=3)},
    optional={"annotations": st.dictionaries(st.text(min_size=1, max_size=6), st.text(max_size=6), max_size=2)})


def _parse(text):
    from compat.author import variants
    from compat.errors import BadInput

    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False, encoding="utf-8") as fh:
        fh.write(text)
    try:
        return variants.load_file(fh.name)
    except BadInput:
        return None
    finally:
        os.unlink(fh.name)


@settings(max_examples=250, deadline=None, derandomize=True)
@given(doc=st.one_of(_document, _plausible), as_json=st.booleans())
def test_variants_parser_gives_a_result_or_bad_input(doc, as_json):
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, allow_unicode=True)
    result = _parse(text)
    if result is None:
        return
    variants, dest, index_ann, problems = result
    if problems:
        assert variants == [] and all(isinstance(w, str) and isinstance(m, str) for w, m in problems)
        return
    for v in variants:
        assert isinstance(v.ref, str)
        assert all(isinstance(k, str) and isinstance(val, str) for k, val in v.annotations.items())
    assert all(isinstance(val, str) for val in index_ann.values())


@settings(max_examples=150, deadline=None, derandomize=True)
@given(text=st.text(alphabet="variants:-[]{}&*!|>'\"#\n ,.0123456789abcrefyesno", max_size=120))
def test_variants_parser_on_arbitrary_text_gives_a_result_or_bad_input(text):
    _parse(text)


@settings(max_examples=100, deadline=None, derandomize=True)
@given(major=st.integers(0, 99), minor=st.from_regex(r"[0-9]{1,3}", fullmatch=True))
def test_unquoted_version_keeps_every_digit(major, minor):
    (v,), _, _, problems = _parse(f"variants:\n  - ref: r\n    annotations:\n      mpi.version: {major}.{minor}\n")
    assert problems == [] and v.annotations[P + "mpi.version"] == f"{major}.{minor}"
