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


#: PEP 440 ranges of the plain form (operators and release numbers) compat compares itself
PACKAGING = ("packaging",)


def test_select_an_index_with_runtime_and_kernel_ranges(tmp_path, profile):
    """Runtime keys with version ranges and an ``os.kernel`` range of the plain ``>=X.Y,<Z``
    form are parsed and compared without ``packaging`` (≈29 ms with what it imports)."""
    from test_runtime_cli import VARIANTS, write_layout
    kernel = [("kernel", {"org.hpc-compat.os.kernel": ">=4.18, <99"})]
    layout = write_layout(str(tmp_path / "layout"), VARIANTS[:4] + kernel)
    args = ("select", "--host", profile, layout, "--no-referrers", "--runtime", "apptainer", "--explain")
    run_compat_process(*args, check=0)
    modules = imported(*args)
    assert "compat.match.runtime" in modules and "compat.match.kernel" in modules
    assert_lean(modules, HEAVY + NFD_RULES + PACKAGING)


@pytest.mark.parametrize("assume", ["userns=no", "os.kernel=6.8.0", "runtime=podman@4.9"])
def test_select_with_an_assumption(profile, assume):
    """``--assume`` of a fact that needs no archspec loads none (spec/cli.md "Start-up")."""
    args = ("select", "--host", profile, "--assume", assume, f"oci:{DEMO}", "--no-referrers")
    run_compat_process(*args, check=0)
    modules = imported(*args)
    assert "compat.host.assume" in modules
    assert_lean(modules, HEAVY + NFD_RULES + PACKAGING)


# -- compat's own reading of plain PEP 440 ranges agrees with packaging's ---------------------

from hypothesis import given, settings, strategies as st  # noqa: E402

from compat.vocab import values as V  # noqa: E402

_number = st.one_of(st.integers(0, 12).map(str), st.integers(0, 12).map("0{}".format))   # 01 is 1
_release = st.lists(_number, min_size=1, max_size=4).map(".".join)
_clause = st.tuples(st.sampled_from([">=", "<=", "==", "!=", "<", ">"]), st.sampled_from(["", " "]),
                    _release).map("".join)
_spec = st.lists(_clause, min_size=1, max_size=3).map(", ".join)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(_spec, st.lists(st.integers(0, 12), min_size=1, max_size=3).map(lambda ns: ".".join(map(str, ns))))
def test_plain_ranges_read_as_packaging_reads_them(spec, release):
    """The peer is packaging (PEP 440): the same normal form (``str(SpecifierSet)``) and the
    same answer for a release X[.Y[.Z]] (zero padding: ``==1.3`` holds for 1.3.0; ``>1.3``
    does not)."""
    from packaging.specifiers import SpecifierSet
    assert V.version_range(spec) == str(SpecifierSet(spec))
    assert V.in_range(release, spec) == SpecifierSet(spec).contains(release, prereleases=True)


@pytest.mark.parametrize("spec,release,expected", [
    ("==1.3", "1.3.0", True), (">1.3", "1.3.0", False), ("<=1.3", "1.3.0", True), ("!=5.10", "5.10.0", False),
    (">=1.03", "1.3", True), ("~=1.3", "1.4", True), ("~=1.3.1", "1.4", False), ("==1.*", "1.9", True),
    (">=5.10,<6", "6.0.0", False), ("<2.0.dev0", "1.9", True)])
def test_ranges_compat_does_not_read_go_to_packaging(spec, release, expected):
    from packaging.specifiers import SpecifierSet
    assert V.in_range(release, spec) is expected == SpecifierSet(spec).contains(release, prereleases=True)
    assert V.version_range(spec) == str(SpecifierSet(spec))
