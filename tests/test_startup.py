"""The hot path stays lean (issue 13): what `select` and `detect` import, read from
``python -X importtime`` of a real run. Heavy or unneeded modules there cost every per-job
call: ``archspec`` (~9 ms with its subprocess/ctypes/pathlib/urllib), ``typing`` (~5 ms),
``jsonschema`` (~100 ms), ``yaml``, ``ssl`` (and the CA bundle), and NFD's rule language
(``compat.nfd.rules``, ``re2``) when no NFD artifact is read."""
import os
import subprocess
import sys

import pytest

from conftest import FIXTURES, HOSTS, REPO, run_compat, run_compat_process
from registry_harness import DISTRIBUTION, RunningRegistry, push_layout

DEMO = os.path.join(FIXTURES, "demo")
#: never on the hot path, whatever the source
HEAVY = ("archspec", "typing", "jsonschema", "yaml", "ssl")
#: NFD's rule language: only when an NFD artifact or rule is evaluated
NFD_RULES = ("compat.nfd.rules", "compat.nfd.expression", "re2")


def imported(*args):
    """The modules ``python -X importtime -m compat ARGS`` imports, each with the chain of
    modules whose import pulled it in (importtime's indentation), after checking the run worked."""
    env = dict(os.environ, PYTHONPATH=REPO + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "compat", *args], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return chains(proc.stderr)


def chains(stderr):
    """{module: "module < parent < grandparent"} from importtime's report, which lists a module
    after the modules it imported, each one level deeper."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and not line.rstrip().endswith("imported package"):
            name = line.split("|", 2)[2]
            rows.append((len(name) - len(name.lstrip()), name.strip()))
    out = {}
    for i, (depth, name) in enumerate(rows):
        chain = [name]
        for later_depth, later in rows[i + 1:]:
            if later_depth < depth:
                chain.append(later)
                depth = later_depth
        out.setdefault(name, " < ".join(chain))
    return out


def offenders(modules, forbidden):
    """One line per forbidden package imported: its outermost module and what imported that."""
    def member(name, f):
        return name == f or name.startswith(f + ".")
    found = set()
    for f in forbidden:
        for name, chain in modules.items():
            if member(name, f):
                links = chain.split(" < ")
                outermost = max(i for i, link in enumerate(links) if member(link, f))
                found.add(" < ".join(links[outermost:]))
    return sorted(found)


def assert_lean(modules, forbidden):
    found = offenders(modules, forbidden)
    assert not found, "imported on the hot path (module < what imported it):\n" + "\n".join(found)


def test_chains_reads_importtime_nesting():
    report = ("import time: self [us] | cumulative | imported package\n"
              "import time:        10 |         10 |     ssl\n"
              "import time:        10 |         20 |   compat.oci.registry\n"
              "import time:        10 |         30 | compat.oci\n"
              "import time:        10 |         10 | typing\n")
    modules = chains(report)
    assert modules["ssl"] == "ssl < compat.oci.registry < compat.oci"
    assert offenders(modules, HEAVY) == ["ssl < compat.oci.registry < compat.oci", "typing"]
    assert offenders(modules, ("compat.oci",)) == ["compat.oci"]
    assert offenders(modules, ("compat.oci.registry", "json")) == ["compat.oci.registry < compat.oci"]


@pytest.fixture
def profile(tmp_path):
    """A saved profile of a captured H100 node (compat detect --json --sysroot)."""
    path = tmp_path / "node.json"
    proc = run_compat("detect", "--json", "--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml"), check=0)
    path.write_text(proc.stdout)
    return str(path)


def test_select_from_a_layout_for_a_saved_profile(profile):
    args = ("select", "--host", profile, f"oci:{DEMO}", "--no-referrers")
    run_compat_process(*args, check=0)      # warms the caches (a child: this process keeps its own in memory)
    modules = imported(*args)
    assert "compat.match.rank" in modules               # the run ranked: the report is read right
    assert_lean(modules, HEAVY + NFD_RULES)


@pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry (distribution) not installed")
def test_select_from_a_loopback_registry_with_warm_caches(tmp_path):
    reg = RunningRegistry(tmp_path / "registry")
    try:
        push_layout(DEMO, reg.host, "hpc/lammps", "2024")
        ref = f"{reg.host}/hpc/lammps:2024"
        env = {"COMPAT_PLAIN_HTTP": ""}
        run_compat_process("select", ref, env=env, check=0)     # warms the profile, manifest and scheme caches
        modules = imported("select", ref)
    finally:
        reg.stop()
    assert "compat.oci.registry" in modules
    assert_lean(modules, HEAVY)


def test_detect_json_with_a_warm_profile_cache():
    run_compat_process("detect", "--json", check=0)     # warms the profile cache
    modules = imported("detect", "--json")
    assert "compat.host" in modules
    assert_lean(modules, HEAVY + NFD_RULES)


def test_no_module_imports_typing_at_run_time():
    """Every ``from typing import`` of compat sits under ``if TYPE_CHECKING:`` (annotations are
    never evaluated: ``from __future__ import annotations``); records derive from
    compat.record.Record. /work/wt/tools/untype.py rewrites a module that does not."""
    import ast
    import pathlib
    offenders = []
    for path in sorted(pathlib.Path(REPO, "compat").rglob("*.py")):
        tree = ast.parse(path.read_text())
        guarded = {id(n) for block in tree.body if isinstance(block, ast.If) and
                   isinstance(block.test, ast.Name) and block.test.id == "TYPE_CHECKING" for n in ast.walk(block)}
        for node in ast.walk(tree):
            typed = isinstance(node, ast.ImportFrom) and node.module == "typing" or \
                isinstance(node, ast.Import) and any(a.name == "typing" for a in node.names)
            if typed and id(node) not in guarded:
                offenders.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not offenders, "typing imported at run time: " + ", ".join(offenders)
