"""`compat completion bash|zsh|fish`: static scripts generated from the parser (spec/cli.md)."""
import shutil
import subprocess

import pytest

from cli_support import cli

BASH = shutil.which("bash")


def complete(script, *words):
    """What the bash script offers for ``compat WORDS`` (the last word being completed)."""
    prog = (script + "\nCOMP_WORDS=(compat " + " ".join(f"'{w}'" for w in words) + ")\n"
            f"COMP_CWORD={len(words)}\n_compat\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"\n")
    proc = subprocess.run([BASH, "--norc", "--noprofile", "-c", prog], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.mark.skipif(BASH is None, reason="bash not installed")
def test_bash_completes_commands_options_and_choices(capsys):
    code, script, _ = cli(capsys, "completion", "bash")
    assert code == 0
    assert complete(script, "se") == ["select"]
    assert complete(script, "select", "--fo") == ["--format"]
    assert complete(script, "select", "--format", "") == ["ref", "digest", "apptainer", "podman", "enroot", "json"]
    assert complete(script, "-q", "ch") == ["check"]
    assert complete(script, "check", "--no-") == ["--no-referrers"]
    assert complete(script, "completion", "") == ["bash", "zsh", "fish"]
    assert "--probe-tools" in complete(script, "detect", "--")


def test_the_scripts_follow_the_parser(capsys):
    """A new option appears in every script without anyone editing them."""
    from compat.cli.main import build_parser
    from compat.cli.completion import describe
    _, commands = describe(build_parser())
    for shell in ("bash", "zsh", "fish"):
        code, script, _ = cli(capsys, "completion", shell)
        assert code == 0
        for c in commands:
            assert c.name in script
            for o in c.options:
                for flag in o.flags:
                    assert (flag if shell != "fish" else flag.lstrip("-")) in script, (shell, c.name, flag)


@pytest.mark.parametrize("shell,check", [("zsh", ["zsh", "-n"]), ("fish", ["fish", "--no-execute"])])
def test_zsh_and_fish_scripts_parse(capsys, tmp_path, shell, check):
    if shutil.which(check[0]) is None:
        pytest.skip(f"{shell} not installed")
    code, script, _ = cli(capsys, "completion", shell)
    path = tmp_path / f"compat.{shell}"
    path.write_text(script)
    proc = subprocess.run(check + [str(path)], capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr


def test_fish_completes_commands_options_and_choices(capsys, tmp_path):
    fish = shutil.which("fish")
    if fish is None:
        pytest.skip("fish not installed")
    code, script, _ = cli(capsys, "completion", "fish")
    path = tmp_path / "compat.fish"
    path.write_text(script)

    def offers(line):
        proc = subprocess.run([fish, "--no-config", "-c", f"source {path}; complete -C '{line}'"],
                              capture_output=True, text=True, timeout=30,
                              env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
        assert proc.returncode == 0, proc.stderr
        return [row.split("\t")[0] for row in proc.stdout.splitlines()]

    assert offers("compat se") == ["select"]
    assert offers("compat select --fo") == ["--format"]
    assert sorted(offers("compat select --format ")) == sorted(["ref", "digest", "apptainer", "podman", "enroot",
                                                                "json"])
