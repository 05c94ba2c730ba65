"""Every JSON document the CLI prints validates against its schema in compat/schemas/, and
select and check name the same things the same way (spec/cli.md, "Machine-readable output")."""
import json
import os
import shutil

import pytest

from cli_support import NEEDS_V4_AND_IB, assert_valid, cli, layout_with_nfd
from conftest import FIXTURES, HOSTS
from test_cli_text import hostile_layout

DEMO = "oci:" + os.path.join(FIXTURES, "demo")
SYSROOTS = sorted(h for h in os.listdir(HOSTS) if os.path.isdir(os.path.join(HOSTS, h)))
SCORE_ORDER = ("gpu", "cuda", "cudaVersion", "fabric", "mpi", "cpu", "cpuLevel", "osFeatures", "requirements",
               "weight")


def nfd_layout(root):
    return layout_with_nfd(root, NEEDS_V4_AND_IB)


def _version(text):
    return tuple(int(x) for x in text.split(".")) if text else ()


def _key(score):
    return tuple(_version(score[k]) if k == "cudaVersion" else score[k] for k in SCORE_ORDER)


def check_selection(doc, schema, code):
    assert_valid(doc, schema)
    assert doc["schema"] == f"compat.{schema}/v1"
    ranked = [c for c in doc["candidates"] if c["rank"] is not None]
    assert [c["rank"] for c in ranked] == list(range(1, len(ranked) + 1))
    assert all(c["verdict"] == "compatible" and c["score"] is not None for c in ranked)
    assert [_key(c["score"]) for c in ranked] == sorted((_key(c["score"]) for c in ranked), reverse=True)
    if code == 0:
        assert doc["selected"] == ranked[0]["digest"] and doc["reference"].endswith(doc["selected"])
    else:
        assert doc["selected"] is None and doc["reference"] is None and not ranked


@pytest.mark.parametrize("host", SYSROOTS)
def test_select_and_check_json_for_every_recorded_host(capsys, host):
    args = [DEMO, "--sysroot", os.path.join(HOSTS, host), "--no-referrers", "--json"]
    code, out, _ = cli(capsys, "select", *args)
    selection = json.loads(out)
    check_selection(selection, "selection", code)
    code2, out, _ = cli(capsys, "check", *args)
    checked = json.loads(out)
    check_selection(checked, "check", code2)
    assert code == code2
    # the same names and values everywhere
    assert {k: v for k, v in checked.items() if k != "schema"} == {k: v for k, v in selection.items() if k != "schema"}


@pytest.mark.parametrize("extra,code", [([], 0), (["--platform", "linux/s390x"], 3)])
def test_hostile_and_empty_results_validate(capsys, tmp_path, extra, code):
    ref = hostile_layout(str(tmp_path / "evil"))
    for command, schema in (("select", "selection"), ("check", "check")):
        got, out, _ = cli(capsys, command, ref, "--json", "--no-referrers", "--sysroot",
                          os.path.join(HOSTS, "laptop-tigerlake"), *extra)
        assert got == code
        check_selection(json.loads(out), schema, code)


def test_check_json_with_an_nfd_artifact_validates(capsys, tmp_path):
    ref = nfd_layout(str(tmp_path / "nfd"))
    code, out, _ = cli(capsys, "check", ref, "--json", "--sysroot", os.path.join(HOSTS, "laptop-tigerlake"))
    doc = json.loads(out)
    check_selection(doc, "check", code)
    nfd = [c for c in doc["candidates"] if "nfd" in c]
    assert len(nfd) == 1 and [s["tag"] for s in nfd[0]["nfd"]["sets"]] == ["avx512-ib", "fallback"]
    code, out, _ = cli(capsys, "select", ref, "--json", "--sysroot", os.path.join(HOSTS, "laptop-tigerlake"))
    check_selection(json.loads(out), "selection", code)


def test_the_python_api_document_is_the_selection_document(capsys):
    import compat
    host = compat.detect(sysroot=os.path.join(HOSTS, "nvidia-4xh100-nonvml"))
    sel = compat.select(DEMO, host=host, referrers=False)
    doc = sel.to_dict()
    check_selection(doc, "selection", 0)
    assert doc["selected"] == sel.digest and doc["reference"] == sel.reference
    best = doc["candidates"][0]["score"]
    assert best["gpu"] == 4 and best["cuda"] == 2 and best["cudaVersion"] == "12.4"   # H100, CUDA 12.4 native


@pytest.mark.parametrize("host", SYSROOTS[:3])
def test_detect_json_validates(capsys, host):
    code, out, _ = cli(capsys, "detect", "--json", "--sysroot", os.path.join(HOSTS, host))
    assert code == 0
    assert_valid(json.loads(out), "host")


def test_validate_json_validates(capsys, tmp_path):
    for target in (os.path.join(FIXTURES, "demo", "index.json"), DEMO, hostile_layout(str(tmp_path / "e"))):
        code, out, _ = cli(capsys, "validate", target, "--json")
        assert code in (0, 1)
        doc = json.loads(out)
        assert_valid(doc, "validation")
        assert doc["errors"] + doc["warnings"] == len(doc["problems"])


def test_annotate_dry_run_prints_an_index_whose_annotations_validate(capsys, tmp_path):
    layout = tmp_path / "demo"
    shutil.copytree(os.path.join(FIXTURES, "demo"), layout)
    code, out, _ = cli(capsys, "annotate", f"oci:{layout}:latest", "--set", "linux/arm64", "os.kernel=>=5.10",
                       "--dry-run")
    assert code == 0
    index = json.loads(out)
    assert index["schemaVersion"] == 2 and index["manifests"]
    for desc in index["manifests"]:
        assert_valid(desc.get("annotations") or {}, "annotations")
    assert any((d.get("annotations") or {}).get("org.hpc-compat.os.kernel") == ">=5.10" for d in index["manifests"])


def test_every_schema_is_a_valid_2020_12_schema():
    from cli_support import SCHEMAS, validator
    for f in os.listdir(SCHEMAS):
        if f.endswith(".schema.json"):
            validator(f[:-len(".schema.json")])


def test_annotate_infer_json_validates(capsys, tmp_path):
    layout = tmp_path / "demo"
    shutil.copytree(os.path.join(FIXTURES, "demo"), layout)
    code, out, _ = cli(capsys, "annotate", f"oci:{layout}:latest", "--infer", "--json")
    assert code == 0
    doc = json.loads(out)
    assert_valid(doc, "inference")
    assert len(doc) == 15 and all(d["digest"].startswith("sha256:") for d in doc)
