"""In-process CLI runs for the tests/test_cli_*.py files: exit code, stdout, stderr, with the
exit-code contract asserted on every run (0/1/2/3, one stderr line on exit 2, no traceback)."""
import json
import os

from conftest import REPO

SCHEMAS = os.path.join(REPO, "compat", "schemas")


def cli(capsys, *argv):
    """(exit code, stdout, stderr) of ``compat ARGV`` run in this process, COMPAT_DEBUG unset
    (so a bug would show as "internal error", which fails the run)."""
    from compat.cli.main import main

    debug = os.environ.pop("COMPAT_DEBUG", None)
    capsys.readouterr()
    try:
        code = main(list(argv))
    finally:
        if debug is not None:
            os.environ["COMPAT_DEBUG"] = debug
    out, err = capsys.readouterr()
    assert code in (0, 1, 2, 3), (code, err)
    assert "Traceback" not in err and "internal error" not in err, err
    if code == 2:
        assert len(err.strip().splitlines()) == 1, err
    return code, out, err


def validator(name):
    """A jsonschema validator for compat/schemas/NAME.schema.json, cross-file $refs resolved."""
    import jsonschema
    from referencing import Registry, Resource

    docs = {}
    for f in os.listdir(SCHEMAS):
        if f.endswith(".schema.json"):
            with open(os.path.join(SCHEMAS, f)) as fh:
                docs[f[:-len(".schema.json")]] = json.load(fh)
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    schema = docs[name]
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, registry=registry)


def assert_valid(doc, name):
    errors = sorted(validator(name).iter_errors(doc), key=lambda e: list(e.absolute_path))
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]


#: an NFD image-compatibility document of two sets: AVX-512 with InfiniBand (mlx5_ib loaded), and
#: an x86-64-v2 fallback
NEEDS_V4_AND_IB = """version: v1alpha1
compatibilities:
- tag: avx512-ib
  weight: 60
  description: AVX-512 build for InfiniBand clusters
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        X86_64_V4: {op: Exists}
  - name: fabric
    matchFeatures:
    - feature: kernel.loadedmodule
      matchExpressions:
        mlx5_ib: {op: Exists}
- tag: fallback
  weight: 5
  rules:
  - name: cpu
    matchFeatures:
    - feature: cpu.cpuid
      matchExpressions:
        X86_64_V2: {op: Exists}
"""


def layout_with_nfd(root: str, spec_text: str) -> str:
    """``oci:ROOT``: a generic amd64 variant and a second one carrying an NFD
    image-compatibility artifact with ``spec_text``, created 2026-01-01."""
    import sys

    from conftest import FIXTURES
    from registry_harness import attach_in_layout
    sys.path.insert(0, FIXTURES)
    from build_demo import build

    build(root, variants=[("generic", {"os": "linux", "architecture": "amd64"}, {}),
                          ("nfd", {"os": "linux", "architecture": "amd64"}, {})], attestation=False)
    with open(os.path.join(root, "index.json")) as fh:
        top = json.load(fh)["manifests"][0]
    with open(os.path.join(root, "blobs", "sha256", top["digest"][7:])) as fh:
        index = json.load(fh)
    attach_in_layout(root, index["manifests"][1], spec_text, "2026-01-01T00:00:00Z")
    return "oci:" + root
