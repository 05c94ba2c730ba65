"""compat/cli/fast.py, the hot commands' argument lists read without argparse: every list it
takes gives exactly argparse's settled namespace (generated lists of the commands' own words,
slips included); what it leaves to argparse, argparse reads; and it does take what jobs run."""
import argparse
import os

import pytest
from hypothesis import given, settings, strategies as st

from compat.cli import fast, parser, spec

#: the hot commands' words, their values, and the slips argparse reads its own way (--runtime:
#: issue 15's option, an unknown one until it is merged)
WORDS = ["select", "detect", "check", "-q", "--quiet", "--json", "--explain", "--format", "json", "ref", "apptainer",
         "summary", "nfd-features", "docker", "--platform", "linux/arm64", "--allow-unknown", "--plain-http",
         "--timeout", "5", "-1", "0", "1e9", "nan", "--referrers", "--no-referrers", "--tags", "a,b", "", "--sysroot",
         "/sys/root", "--runtime", "singularity", "--assume", "gpu.cc=9.0", "--host", "node.json", "--probe-tools", "--", "-", "--expl",
         "--host=node.json", "--timeout=3", "--timeout=", "--json=1", "--format=digest", "oci:/layout", "reg.io/a:b",
         "--help", "-h", "--version", "-qq", "--quie", "-x", "--no-referrers=1", "--tags=", "--assume=a=b"]
ENVIRONMENTS = [{}, {"COMPAT_TIMEOUT": "7"}, {"COMPAT_TIMEOUT": "0"}, {"COMPAT_PLAIN_HTTP": "reg.io"},
                {"COMPAT_PLAIN_HTTP": "1"}]


def argparse_reads(argv):
    """argparse's settled namespace as a dict, or None when it refuses (or prints help)."""
    try:
        return vars(parser.parse(argv))
    except SystemExit:
        return None


@pytest.fixture
def environment(monkeypatch):
    def use(env):
        for name in ("COMPAT_TIMEOUT", "COMPAT_PLAIN_HTTP"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
    return use


def test_spec_spells_argparse_suppress():
    assert spec.SUPPRESS == argparse.SUPPRESS


@pytest.mark.parametrize("argv", [
    ["select", "reg.io/hpc/lammps:2024"],
    ["select", "oci:/layout", "--host", "node.json", "--no-referrers"],
    ["-q", "select", "--explain", "--format", "apptainer", "reg.io/a:b", "--timeout", "3"],
    ["select", "reg.io/a:b", "--assume", "gpu.cc=9.0", "--assume", "os.arch=amd64", "--tags", "x,y", "-q"],
    ["select", "--json", "--platform=linux/arm64", "--referrers", "--sysroot", "/sys/root", "reg.io/a:b"],
    ["detect", "--json"], ["detect"], ["detect", "--format", "slurm-features", "--probe-tools"],
])
def test_takes_what_jobs_run_and_reads_it_as_argparse(argv, environment):
    environment({})
    args = fast.parse(argv)
    assert args is not None
    assert vars(args) == argparse_reads(argv)


@pytest.mark.parametrize("argv", [
    ["select"], ["select", "--help"], ["--version"], ["select", "--expl", "r"], ["select", "r", "--", "s"],
    ["select", "r", "--timeout", "0"], ["select", "r", "--referrers", "--no-referrers"], ["check", "r"],
    ["select", "r", "--json", "--format", "ref"], ["detect", "--host", "h.json", "--sysroot", "/s"],
    ["select", "r", "s"], ["select", "r", "--host"], ["select", "r", "--format", "docker"],
])
def test_leaves_slips_and_other_commands_to_argparse(argv, environment):
    environment({})
    assert fast.parse(argv) is None


@settings(max_examples=400, deadline=None, derandomize=True)
@given(st.lists(st.sampled_from(WORDS), max_size=8), st.sampled_from(ENVIRONMENTS))
def test_every_list_it_takes_reads_as_argparse_reads_it(argv, env):
    saved = dict(os.environ)
    try:
        for name in ("COMPAT_TIMEOUT", "COMPAT_PLAIN_HTTP"):
            os.environ.pop(name, None)
        os.environ.update(env)
        args = fast.parse(argv)
        if args is not None:
            assert vars(args) == argparse_reads(argv), argv
    finally:
        os.environ.clear()
        os.environ.update(saved)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(st.sampled_from(["select", "detect"]), st.lists(st.sampled_from(WORDS[3:]), max_size=6))
def test_after_a_hot_command_too(command, rest):
    """The same, with the command first (most generated lists above start elsewhere)."""
    argv = [command] + rest
    args = fast.parse(argv)
    if args is not None:
        assert vars(args) == argparse_reads(argv), argv
