"""The handful of CLI tests that start ``python -m compat`` as a child process (the rest run
``compat.cli.main.main`` in process through conftest.run_compat): the entry point, the exit
codes and the streams as a shell sees them."""
from __future__ import annotations

import json
import os

from conftest import FIXTURES, HOSTS, run_compat_process

DEMO = "oci:" + os.path.join(FIXTURES, "demo")


def test_version_and_help_exit_0():
    assert run_compat_process("--version", check=0).stdout.startswith("compat ")
    assert "select" in run_compat_process("--help", check=0).stdout


def test_select_for_a_captured_machine():
    proc = run_compat_process("select", DEMO, "--sysroot", os.path.join(HOSTS, "laptop-tigerlake"), "--json")
    assert proc.returncode in (0, 3), proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["candidates"]) > 1


def test_a_bad_option_is_one_line_on_stderr_and_exit_2():
    proc = run_compat_process("select", DEMO, "--platform", "linux/amd64/v99x")
    assert proc.returncode == 2 and proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_no_compatible_candidate_is_exit_3():
    proc = run_compat_process("select", DEMO, "--platform", "linux/s390x")
    assert proc.returncode == 3 and proc.stdout == ""
    assert "why" in proc.stderr or "incompatible" in proc.stderr


def test_python_dash_m_compat_runs_main(monkeypatch, capsys):
    """compat/__main__.py, in process (the child-process tests above do not count for coverage
    unless coverage is installed where the child runs)."""
    import runpy
    import sys

    import pytest

    monkeypatch.setattr(sys, "argv", ["compat", "--version"])
    with pytest.raises(SystemExit) as exc:
        runpy.run_module("compat", run_name="__main__")
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("compat ")
