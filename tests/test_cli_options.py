"""Option values and combinations, through the CLI as a user types them (spec/cli.md)."""
import argparse
import os

import pytest

from cli_support import cli
from conftest import FIXTURES, HOSTS

DEMO = "oci:" + os.path.join(FIXTURES, "demo")
LAPTOP = os.path.join(HOSTS, "laptop-tigerlake")


@pytest.fixture(autouse=True)
def _no_debug(monkeypatch):
    monkeypatch.delenv("COMPAT_DEBUG", raising=False)
    for name in ("COMPAT_TIMEOUT", "COMPAT_PLAIN_HTTP", "COMPAT_SYSROOT"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("value", ["-1", "0", "-0", "nan", "inf", "-inf", "1e308", "86401", "ten", ""])
@pytest.mark.parametrize("command", ["select", "check", "validate"])
def test_bad_timeout_is_refused_before_anything_runs(capsys, command, value):
    code, out, err = cli(capsys, command, "registry.invalid/x:1", "--timeout", value)
    assert code == 2 and out == ""
    assert err.startswith(f"compat {command}: argument --timeout:") and "--help" in err


@pytest.mark.parametrize("value,seconds", [("0.5", 0.5), ("10", 10.0), ("86400", 86400.0)])
def test_good_timeout_reaches_the_command(value, seconds):
    from compat.cli.main import build_parser, settle
    parser = build_parser("select")
    args = parser.parse_args(["select", "x", "--timeout", value])
    settle(args, parser)
    assert args.timeout == seconds


def test_timeout_from_the_environment(capsys, monkeypatch):
    from compat.cli.main import build_parser, settle
    parser = build_parser("check")
    monkeypatch.setenv("COMPAT_TIMEOUT", "2.5")
    args = parser.parse_args(["check", "x"])
    settle(args, parser)
    assert args.timeout == 2.5
    args = parser.parse_args(["check", "x", "--timeout", "7"])     # the option wins
    settle(args, parser)
    assert args.timeout == 7
    monkeypatch.delenv("COMPAT_TIMEOUT")
    args = parser.parse_args(["check", "x"])
    settle(args, parser)
    assert args.timeout == 10.0
    monkeypatch.setenv("COMPAT_TIMEOUT", "inf")
    code, _, err = cli(capsys, "select", "registry.invalid/x:1")
    assert code == 2 and "COMPAT_TIMEOUT" in err


@pytest.mark.parametrize("env,ref,expected", [
    ("1", "reg.example:5000/a/b:1", True),
    ("reg.example:5000", "reg.example:5000/a/b:1", True),
    ("other:5000, reg.example:5000", "reg.example:5000/a/b:1", True),
    ("reg.example", "reg.example:5000/a/b:1", False),
    ("0", "reg.example:5000/a/b:1", False),
    ("", "reg.example:5000/a/b:1", False),
])
def test_plain_http_hosts_from_the_environment(monkeypatch, env, ref, expected):
    from compat.cli.main import build_parser, settle
    monkeypatch.setenv("COMPAT_PLAIN_HTTP", env)
    parser = build_parser("select")
    args = parser.parse_args(["select", ref])
    settle(args, parser)
    assert args.plain_http is expected


@pytest.mark.parametrize("argv,needle", [
    (["select", DEMO, "--json", "--format", "enroot"], "--json and --format enroot"),
    (["select", DEMO, "--json", "--format", "digest"], "--json and --format digest"),
    (["detect", "--json", "--format", "nfd-features"], "--json and --format nfd-features"),
    (["select", DEMO, "--host", "node.json", "--sysroot", "/x"], "--host FILE and --sysroot DIR"),
    (["check", DEMO, "--host", "node.json", "--sysroot", "/x"], "--host FILE and --sysroot DIR"),
    (["detect", "--host", "node.json", "--probe-tools"], "--probe-tools"),
    (["annotate", "oci:x:1", "--set", "all", "weight=1", "--json"], "go with --infer"),
    (["annotate", "oci:x:1", "--infer", "--json", "--explain"], "--json and --explain"),
    (["select", DEMO, "--referrers", "--no-referrers"], "not allowed with"),
])
def test_contradicting_options_are_refused(capsys, argv, needle):
    code, out, err = cli(capsys, *argv)
    assert code == 2 and out == "" and needle in err, err


def test_explain_with_format_puts_the_table_on_stderr_and_the_reference_on_stdout(capsys):
    code, out, err = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--explain", "--format", "digest")
    assert code == 0
    assert out.strip().startswith("sha256:") and len(out.strip().splitlines()) == 1
    assert "SELECTED" in err and "why:" in err and out.strip()[7:19] in err


def test_explain_with_json_puts_the_table_on_stderr_and_json_on_stdout(capsys):
    import json
    code, out, err = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--explain", "--json")
    assert code == 0 and "SELECTED" in err
    assert json.loads(out)["selected"][7:19] in err


def test_explain_alone_stays_on_stdout(capsys):
    code, out, err = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--explain")
    assert code == 0 and "SELECTED" in out and err == ""


def test_explain_and_format_when_nothing_fits(capsys):
    code, out, err = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--platform", "linux/s390x",
                         "--explain", "--format", "ref")
    assert code == 3 and out == "" and "pinned   nothing" in err


def test_json_format_json_is_not_a_conflict(capsys):
    code, out, _ = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--json", "--format", "json")
    assert code == 0 and out.lstrip().startswith("{")


def test_version_comes_from_the_package_metadata(capsys):
    from importlib import metadata
    code, out, _ = cli(capsys, "--version")
    assert code == 0 and out.strip() == f"compat {metadata.version('hpc-compat')}"


def test_usage_errors_are_one_line(capsys):
    for argv in ([], ["nosuch"], ["select"], ["select", DEMO, "--format", "docker"], ["detect", "--bogus"]):
        code, out, err = cli(capsys, *argv)
        assert code == 2 and out == "" and err.startswith("compat"), (argv, err)


@pytest.mark.parametrize("where", ["before", "after"])
def test_quiet_silences_warnings_not_errors(capsys, tmp_path, where):
    import shutil
    layout = tmp_path / "demo"
    shutil.copytree(os.path.join(FIXTURES, "demo"), layout)
    argv = ["annotate", f"oci:{layout}:latest", "--unset", "all", "org.hpc-compat.no-such-key-anywhere"]
    code, out, err = cli(capsys, *argv)
    assert code == 0 and "unchanged" in err
    quiet = ["-q"] + argv if where == "before" else argv + ["--quiet"]
    code, out, err = cli(capsys, *quiet)
    assert code == 0 and err == "" and out.strip().startswith("sha256:")
    code, out, err = cli(capsys, *(["-q", "select", "oci:/nonexistent/layout"]))
    assert code == 2 and "nonexistent" in err


def test_help_names_the_environment_and_describes_every_command(capsys):
    from compat.cli.main import COMMANDS, ENVIRONMENT
    code, out, _ = cli(capsys, "--help")
    assert code == 0
    for name, _ in ENVIRONMENT:
        assert name in out
    for command in COMMANDS:
        code, out, _ = cli(capsys, command, "--help")
        assert code == 0
        description = out.split("\n\n")[1].strip()
        assert not description.startswith(("positional", "options")) and len(description) > 20, (command, out)
        assert "COMPAT_TIMEOUT" in out


def test_the_parser_builds_only_the_command_it_runs():
    from compat.cli.main import build_parser
    sub = [a for a in build_parser("select")._actions if isinstance(a, argparse._SubParsersAction)][0]
    assert list(sub.choices) == ["select"]


def test_quiet_turns_off_the_progress_bar(monkeypatch):
    """-q makes stderr count as no terminal, and the layer-scan progress bar draws only on one."""
    import io
    import sys
    from compat.cli.main import _QuietStream
    from compat.infer.scan import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setattr(sys, "stderr", Terminal())
    assert Progress(1 << 30, "scanning").enabled
    monkeypatch.setattr(sys, "stderr", _QuietStream(sys.stderr))
    bar = Progress(1 << 30, "scanning")
    bar(1 << 29)
    bar.close()
    assert not bar.enabled and sys.stderr.getvalue() == ""


@pytest.mark.parametrize("argv,needle", [
    (["select", "registry.invalid/x:1", "--timeout", "-1"], "--timeout"),
    (["select", "registry.invalid/x:1", "--timeout", "0"], "--timeout"),
    (["select", DEMO, "--json", "--format", "enroot"], "--json and --format enroot"),
    (["select", DEMO, "--format", "podman", "--no-referrers"], "org.opencontainers.image.ref.name"),
])
def test_as_a_user_types_it_in_a_shell(argv, needle):
    from helpers import run_hostile
    proc = run_hostile(*argv, env={"COMPAT_SYSROOT": LAPTOP}, seconds=15)
    assert proc.returncode == 2 and needle in proc.stderr and proc.stdout == ""


def test_explain_with_a_format_the_runtime_cannot_take_is_one_line(capsys):
    code, out, err = cli(capsys, "select", DEMO, "--sysroot", LAPTOP, "--no-referrers", "--explain",
                         "--format", "enroot")
    assert code == 2 and out == "" and "enroot cannot import" in err


from hypothesis import given, settings, strategies as st  # noqa: E402


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.one_of(st.text(max_size=30), st.floats(allow_nan=True, allow_infinity=True).map(repr),
                 st.integers(min_value=-10**400, max_value=10**400).map(str)))
def test_timeout_values_are_a_number_in_range_or_a_usage_error(text):
    import math
    from compat.cli.main import timeout_value
    from compat.limits import MAX_TIMEOUT_S
    try:
        value = timeout_value(text)
    except argparse.ArgumentTypeError as exc:
        assert "\n" not in str(exc)
        return
    assert math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.text(max_size=60))
def test_any_ref_text_is_a_reference_or_bad_input(text):
    """Never another exception, and never the network: refs.source only reads names."""
    from compat.cli.refs import source
    from compat.errors import BadInput
    try:
        source(text)
    except BadInput as exc:
        assert "\n" not in str(exc) or "\n" in text


@pytest.mark.parametrize("argv,message", [
    (["--assume", "os.arch=arm64", "--assume", "cpu.target=zen4"], "contradicts --assume os.arch=arm64"),
    (["--assume", "gpu.cc=9.0", "--assume", "gpu.cc=8.0"], "--assume gpu.cc: given twice"),
    (["--tags", ""], "--tags: name at least one tag"),
    (["--tags", ", ,"], "--tags: name at least one tag"),
])
def test_contradicting_host_facts_and_empty_tags_are_refused(capsys, argv, message):
    code, out, err = cli(capsys, "select", f"oci:{FIXTURES}/demo", "--no-referrers",
                         "--sysroot", os.path.join(HOSTS, "ib-hdr-zen4"), *argv)
    assert code == 2 and message in err and not out


def test_the_same_assumption_twice_is_one(capsys):
    code, _, _ = cli(capsys, "detect", "--assume", "gpu.cc=9.0", "--assume", "gpu.cc=9.0")
    assert code == 0
