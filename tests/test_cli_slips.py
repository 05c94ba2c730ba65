"""Common slips get the message that helps, before any network (spec/cli.md, "REF")."""
import os
import socket

import pytest

from cli_support import cli
from conftest import FIXTURES, REPO
from helpers import run_hostile


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*a, **k):
        raise AssertionError("the network was used")
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.mark.parametrize("command", ["select", "check", "validate"])
def test_a_layout_without_oci_prefix_suggests_it(capsys, monkeypatch, command):
    monkeypatch.chdir(REPO)
    code, out, err = cli(capsys, command, "fixtures/demo")
    assert code == 2 and out == ""
    assert "did you mean oci:fixtures/demo?" in err


@pytest.mark.parametrize("command,target", [
    ("validate", "/nonexistent.json"), ("validate", "./missing/variants.yaml"), ("validate", "missing.yml"),
    ("select", "/nonexistent/layout"), ("check", "../nowhere"), ("select", "~/no-such-dir-here"),
])
def test_a_missing_path_says_no_such_file(capsys, command, target):
    code, out, err = cli(capsys, command, target)
    assert code == 2 and out == ""
    assert "no such file or directory" in err and "repository name" not in err


def test_a_local_directory_that_is_not_a_layout_is_not_sent_to_docker_hub(capsys, monkeypatch, tmp_path):
    (tmp_path / "ubuntu").mkdir()
    monkeypatch.chdir(tmp_path)
    code, _, err = cli(capsys, "select", "ubuntu")
    assert code == 2 and "local directory" in err and "docker.io/ubuntu" in err


def test_a_file_given_to_validate_is_still_validated(capsys):
    code, out, _ = cli(capsys, "validate", os.path.join(FIXTURES, "demo", "index.json"))
    assert code in (0, 1) and "index.json" in out


def test_as_a_user_types_it_in_a_shell():
    proc = run_hostile("select", "fixtures/demo", cwd=REPO, seconds=10)
    assert proc.returncode == 2 and "did you mean oci:fixtures/demo?" in proc.stderr
    proc = run_hostile("validate", "/nonexistent.json")
    assert proc.returncode == 2 and "no such file" in proc.stderr


def test_annotate_catches_the_same_slip(capsys, monkeypatch):
    monkeypatch.chdir(REPO)
    code, _, err = cli(capsys, "annotate", "fixtures/demo", "--set", "all", "weight=1", "--dry-run")
    assert code == 2 and "did you mean oci:fixtures/demo?" in err


def test_oras_and_docker_prefixes_name_the_same_registry_reference(capsys):
    """compat prints ``oras://REG/REPO@DIGEST`` for a SIF child: pasted back, it reads as the
    registry reference it names (as ``docker://`` does); another scheme is a clear refusal."""
    from compat.cli.refs import source
    digest = "sha256:" + "a" * 64
    plain = source(f"reg.example:5000/hpc/app@{digest}")
    assert source(f"oras://reg.example:5000/hpc/app@{digest}") == plain
    assert source(f"docker://reg.example:5000/hpc/app@{digest}") == plain
    assert source("oras://reg.example/hpc/app:v1") == source("reg.example/hpc/app:v1")
    code, out, err = cli(capsys, "select", "https://reg.example/hpc/app:v1")
    assert code == 2 and "https://" in err and "oras://" in err and "port" not in err


def test_annotate_variant_paths_that_are_no_sif_file(capsys, tmp_path, monkeypatch):
    """A path-looking ``--variant`` that is not a regular file is a clear exit 2, before any
    network (a directory named like a SIF, a FIFO, a missing .sif)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "some-dir.sif").mkdir()
    os.mkfifo(tmp_path / "ff.sif")
    for variant, says in [("some-dir.sif", "is a local directory"), ("./ff.sif", "not a regular file"),
                          ("missing.sif", "no such file or directory")]:
        code, out, err = cli(capsys, "annotate", f"oci:{tmp_path}/o:1", "--variant", variant, "--dry-run")
        assert code == 2 and out == "" and says in err, (variant, err)
        assert "docker.io" not in err and "malformed" not in err
        assert variant == "missing.sif" or "a SIF variant is a regular file" in err


def test_annotate_help_says_a_variant_may_be_a_sif_file(capsys):
    code, out, _ = cli(capsys, "annotate", "--help")
    assert code == 0 and "SIF file" in " ".join(out.split())
