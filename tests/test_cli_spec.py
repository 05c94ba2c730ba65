"""spec/cli.md is in step with the parser: every option of every command is documented in
that command's section, every option the spec's synopses name exists, and the environment
table lists what --help lists."""
import os
import re

from conftest import REPO

SPEC = open(os.path.join(REPO, "spec", "cli.md"), encoding="utf-8").read()


def sections():
    """{command: text of the sections whose heading names `compat COMMAND`}."""
    out = {}
    for block in re.split(r"^## ", SPEC, flags=re.M)[1:]:
        heading = block.splitlines()[0]
        for command in re.findall(r"`compat (\w+)`", heading):
            out[command] = out.get(command, "") + block
    return out


def parser_options():
    import argparse
    from compat.cli.main import build_parser
    p = build_parser()
    sub = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)][0]
    top = {f for a in p._actions for f in a.option_strings}
    return top, {name: {f for a in s._actions for f in a.option_strings if f.startswith("--")}
                 for name, s in sub.choices.items()}


def test_every_option_of_every_command_is_in_its_section():
    from compat.cli.main import COMMANDS
    top, commands = parser_options()
    docs = sections()
    assert set(COMMANDS) <= set(docs), set(COMMANDS) - set(docs)
    for command, options in commands.items():
        for option in options - {"--help", "--quiet"}:
            assert re.search(re.escape(option) + r"(?![\w-])", docs[command]), (command, option)
    for option in top | {"--quiet", "--help"}:
        assert option in SPEC, option


def test_every_option_the_synopses_name_exists():
    _, commands = parser_options()
    for block in re.findall(r"```\n(.*?)```", SPEC, flags=re.S):
        for line in block.splitlines():
            m = re.match(r"\s*compat (\w+)", line)
            command = m.group(1) if m else command
            for option in re.findall(r"(--[a-z][a-z-]*)", line):
                assert option in commands[command], (command, option)


def test_the_environment_table_matches_help():
    from compat.cli.main import ENVIRONMENT
    env = SPEC.split("## Environment", 1)[1]
    documented = set(re.findall(r"^\| `(COMPAT_\w+)`", env, flags=re.M))
    assert documented == {name for name, _ in ENVIRONMENT}


def test_help_and_spec_name_the_same_tools_for_probe_tools():
    from compat.cli.main import build_parser
    import argparse
    p = build_parser("detect")
    sub = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)][0]
    help_text = [a.help for a in sub.choices["detect"]._actions if "--probe-tools" in a.option_strings][0]
    spec_text = SPEC[SPEC.index("`--probe-tools`"):][:200]
    for tool in re.findall(r"\b(\w+_info)\b", help_text):
        assert tool in spec_text, tool
