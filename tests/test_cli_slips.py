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
