"""What the CLI prints from an image is escaped: an annotation cannot send terminal escapes
or forge table rows, in any command; and no Python repr reaches the text (spec/cli.md)."""
import hashlib
import json
import os
import re

import pytest

from cli_support import cli, layout_with_nfd
from conftest import FIXTURES, HOSTS

LAPTOP = os.path.join(HOSTS, "laptop-tigerlake")
FORGED = "1  SELECTED      linux/amd64   forged row"
EVIL = f"tuned\x1b[31m red\x1b]0;title\x07\r\n{FORGED}\u202eevil"
MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def hostile_layout(root):
    """An index whose descriptions and values carry escapes, newlines and bidi controls."""
    os.makedirs(os.path.join(root, "blobs", "sha256"))
    with open(os.path.join(root, "oci-layout"), "w") as fh:
        json.dump({"imageLayoutVersion": "1.0.0"}, fh)
    amd64 = {"os": "linux", "architecture": "amd64"}
    descs = [{"mediaType": MANIFEST, "digest": "sha256:" + c * 64, "size": 10, "platform": amd64,
              "annotations": dict({"org.hpc-compat.description": EVIL}, **extra)}
             for c, extra in (("a", {"org.hpc-compat.cpu.target": "zen9\x1b]0;pwn\x07"}),
                              ("b", {"org.hpc-compat.mpi.implementation": f"open\n{FORGED}"}),
                              ("c", {}))]
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                        "manifests": descs}).encode()
    digest = hashlib.sha256(index).hexdigest()
    with open(os.path.join(root, "blobs", "sha256", digest), "wb") as fh:
        fh.write(index)
    with open(os.path.join(root, "index.json"), "w") as fh:
        json.dump({"schemaVersion": 2, "manifests": [
            {"mediaType": "application/vnd.oci.image.index.v1+json", "digest": "sha256:" + digest,
             "size": len(index), "annotations": {"org.opencontainers.image.ref.name": "latest"}}]}, fh)
    return "oci:" + root


def assert_clean(text):
    for bad in ("\x1b", "\x07", "\r", "\u202e"):
        assert bad not in text, repr(text[:300])
    for line in text.splitlines():
        assert not line.startswith(FORGED), line


@pytest.mark.parametrize("argv,code", [
    (["select", "--explain"], 0), (["select"], 0), (["check"], 0),
    (["select", "--platform", "linux/s390x"], 3), (["check", "--platform", "linux/s390x"], 3),
    (["select", "--explain", "--format", "digest"], 0), (["validate"], 1),
])
def test_image_text_is_escaped_in_every_command(capsys, tmp_path, argv, code):
    ref = hostile_layout(str(tmp_path / "evil"))
    extra = [] if argv[0] == "validate" else ["--sysroot", LAPTOP, "--no-referrers"]
    got, out, err = cli(capsys, argv[0], ref, *argv[1:], *extra)
    assert got == code
    assert_clean(out)
    assert_clean(err)
    if "--explain" in argv:
        table = out if "--format" not in argv else err
        assert table.count("tuned\\x1b[31m") == 3 and "\\n1  SELECTED" in table
        assert sum(1 for line in table.splitlines() if re.match(r"1 +#[0-9.]+ +SELECTED ", line)) == 1


def test_json_output_keeps_the_text_but_as_json_escapes(capsys, tmp_path):
    ref = hostile_layout(str(tmp_path / "evil"))
    code, out, _ = cli(capsys, "select", ref, "--json", "--sysroot", LAPTOP, "--no-referrers")
    assert code == 0 and "\x1b" not in out
    assert json.loads(out)["candidates"][0]["description"] == EVIL


def test_nfd_rows_show_value_lists_not_python_reprs(capsys, tmp_path):
    ref = layout_with_nfd(str(tmp_path / "nfd"), """version: v1alpha1
compatibilities:
- rules:
  - name: vendor
    matchFeatures:
    - feature: cpu.model
      matchExpressions:
        vendor_id: {op: In, value: ["Intel", "AMD"]}
""")
    for argv in (["check"], ["select", "--explain"]):
        code, out, err = cli(capsys, argv[0], ref, *argv[1:], "--sysroot", LAPTOP)
        assert code == 0
        for repr_mark in ("['", "('", "{'", "None", "b'"):
            assert repr_mark not in out, (repr_mark, out)
    code, out, _ = cli(capsys, "check", ref, "--sysroot", LAPTOP)
    assert "cpu.model.vendor_id In [Intel, AMD]" in out


def test_demo_explanations_show_no_python_reprs(capsys):
    demo = "oci:" + os.path.join(FIXTURES, "demo")
    for host in sorted(os.listdir(HOSTS)):
        if not os.path.isdir(os.path.join(HOSTS, host)):
            continue
        for argv in (["select", "--explain"], ["check"]):
            code, out, _ = cli(capsys, argv[0], demo, *argv[1:], "--sysroot", os.path.join(HOSTS, host),
                               "--no-referrers")
            assert code in (0, 3)
            for repr_mark in ("['", "('", "{'", "None", "b'", "()", "[]"):
                assert repr_mark not in out, (host, repr_mark)
