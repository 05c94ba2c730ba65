"""The import direction (README, Architecture): every module's AST, imports inside functions
included, against the layer table below. A module imports only from a lower layer, or from its
own package in the same layer; no private name (``_x``) crosses a package boundary (compat's
or a dependency's); an import inside a function says, in a comment, which start-up it saves."""
from __future__ import annotations

import ast
import pathlib
import sys
from typing import Dict, Iterator, List, Optional, Tuple

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "compat"

#: lowest first; a module belongs to the longest prefix that names it
LAYERS: Tuple[Tuple[str, ...], ...] = (
    ("compat.errors", "compat.record"),
    ("compat.limits",),
    ("compat.io", "compat.schema"),
    ("compat.vocab",),
    ("compat.oci.digest", "compat.oci.media", "compat.oci.platform", "compat.oci.manifest", "compat.oci.sif"),
    ("compat.host", "compat.oci"),
    ("compat.nfd", "compat.nfd.rules", "compat.nfd.expression", "compat.nfd.goregexp", "compat.nfd.template",
     "compat.nfd.cpuid"),
    ("compat.match", "compat.nfd.features", "compat.nfd.nodefeature", "compat.nfd.artifacts"),
    ("compat.api",),
    ("compat.infer",),
    ("compat.author", "compat.plan", "compat.cluster"),    # plan/cluster: issue 14's `compat plan`
    ("compat.cli",),
    ("compat.__main__", "compat"),
)
#: the word a comment beside an import inside a function must hold
LAZY_WORD = "start-up"
#: private by spelling, public by contract (namedtuple's API)
PUBLIC_UNDERSCORE = {"_replace", "_asdict", "_fields", "_make"}


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: Dict[str, pathlib.Path] = {module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def home(module: str) -> Tuple[int, str]:
    """(layer, prefix) of a compat module."""
    best: Optional[Tuple[int, str]] = None
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or (prefix != "compat" and module.startswith(prefix + "."))
            if inside and (best is None or len(prefix) > len(best[1])):
                best = (level, prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS and the README"
    return best


def package(module: str) -> str:
    """compat.<package> (or compat.<module> for a top-level module)."""
    return ".".join(module.split(".")[:2])


class Import:
    """One imported module (``names``: the names taken from it; ``bind``: the local name the
    module itself gets, if any)."""

    def __init__(self, target: str, names: List[str], line: int, lazy: bool, bind: Optional[str] = None):
        self.target, self.names, self.line, self.lazy, self.bind = target, names, line, lazy, bind


def imports(module: str, tree: ast.AST) -> Iterator[Import]:
    is_pkg = MODULES[module].name == "__init__.py"
    inside = {id(n) for f in ast.walk(tree) if isinstance(f, (ast.FunctionDef, ast.AsyncFunctionDef))
              for n in ast.walk(f)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield Import(a.name, [], node.lineno, id(node) in inside,
                             a.asname or a.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")[: len(module.split(".")) - node.level + (1 if is_pkg else 0)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in MODULES:          # from compat.oci import media: the module compat.oci.media
                    yield Import(sub, [], node.lineno, id(node) in inside, a.asname or a.name)
                else:
                    yield Import(base, [a.name], node.lineno, id(node) in inside)


def _trees():
    return {m: ast.parse(p.read_text(), str(p)) for m, p in MODULES.items()}


TREES = _trees()


def test_every_module_has_a_layer():
    for module in MODULES:
        home(module)


def _upward() -> List[str]:
    out = []
    for module, tree in TREES.items():
        level, _ = home(module)
        for imp in imports(module, tree):
            if imp.target != "compat" and not imp.target.startswith("compat."):
                continue
            t_level, _ = home(imp.target)
            if t_level > level or (t_level == level and package(imp.target) != package(module)):
                out.append(f"{module}:{imp.line} imports {imp.target} (layer {t_level} over {level})")
    return out


def test_no_upward_import():
    assert _upward() == []


def _private() -> List[str]:
    out = []
    for module, tree in TREES.items():
        bound = {}
        for imp in imports(module, tree):
            cross = not imp.target.startswith("compat") or package(imp.target) != package(module)
            if imp.bind:
                bound[imp.bind] = imp.target
            for name in imp.names:
                if name.startswith("_") and not name.startswith("__") and cross:
                    out.append(f"{module}:{imp.line} imports {imp.target}.{name}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) \
                    and node.attr.startswith("_") and not node.attr.startswith("__") \
                    and node.attr not in PUBLIC_UNDERSCORE and node.value.id in bound:
                target = bound[node.value.id]
                if not target.startswith("compat") or package(target) != package(module):
                    out.append(f"{module}:{node.lineno} uses {node.value.id}.{node.attr}")
    return out


def test_no_private_name_crosses_a_package():
    assert _private() == []


def _unexplained_lazy() -> List[str]:
    out = []
    for module, tree in TREES.items():
        lines = MODULES[module].read_text().splitlines()
        for imp in imports(module, tree):
            if not imp.lazy:
                continue
            i = imp.line - 1
            comment = lines[i].partition("#")[2]
            j = i - 1
            while j >= 0:           # one comment above a group of imports (isort may split it)
                text = lines[j].strip()
                if text.startswith(("#", "from ", "import ")) or \
                        (not text and j > 0 and lines[j - 1].strip().startswith(("from ", "import "))):
                    comment += text.partition("#")[2]
                    j -= 1
                else:
                    break
            if LAZY_WORD not in comment:
                out.append(f"{module}:{imp.line} imports {imp.target} inside a function without saying "
                           f"which {LAZY_WORD} it saves")
    return out


def test_lazy_imports_say_why():
    assert sorted(set(_unexplained_lazy())) == []


@pytest.mark.parametrize("source, expected", [
    ("from compat.api import rank\n", ["compat.host.fake:1 imports compat.api (layer 8 over 5)"]),
    ("def f():\n    from compat.cli import main\n", ["compat.host.fake:2 imports compat.cli.main (layer 11 over 5)"]),
    ("from compat.oci import registry\n", ["compat.host.fake:1 imports compat.oci.registry (layer 5 over 5)"]),
    ("from compat.host import cpu\nfrom compat.vocab import data\n", []),
])
def test_the_check_sees_an_upward_import(monkeypatch, source, expected):
    monkeypatch.setitem(MODULES, "compat.host.fake", ROOT / "host" / "fake.py")
    monkeypatch.setattr(sys.modules[__name__], "TREES", {"compat.host.fake": ast.parse(source)})
    assert _upward() == expected


@pytest.mark.parametrize("source, expected", [
    ("from compat.match.rank import _skip\n", ["compat.host.fake:1 imports compat.match.rank._skip"]),
    ("from archspec.cpu.detect import _canon\n", ["compat.host.fake:1 imports archspec.cpu.detect._canon"]),
    ("from compat.oci import registry\nregistry._fail()\n", ["compat.host.fake:2 uses registry._fail"]),
    ("from compat.host import cpu\ncpu._partial()\nx = (1,)._replace\n", []),
])
def test_the_check_sees_a_private_name(monkeypatch, source, expected):
    monkeypatch.setitem(MODULES, "compat.host.fake", ROOT / "host" / "fake.py")
    monkeypatch.setattr(sys.modules[__name__], "TREES", {"compat.host.fake": ast.parse(source)})
    assert _private() == expected


def test_no_lazy_import_of_what_the_module_imports_anyway():
    """A lazy import saves nothing when the module already imports the same name at the top."""
    out = []
    for module, tree in TREES.items():
        found = list(imports(module, tree))
        top = {(i.target, tuple(i.names)) for i in found if not i.lazy}
        out += [f"{module}:{i.line} {i.target} {i.names}" for i in found
                if i.lazy and (i.target, tuple(i.names)) in top]
    assert out == []
