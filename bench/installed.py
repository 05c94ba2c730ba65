"""The build users run: a virtual environment with ``pip install .[fast]`` of this repository
(a wheel, bytecode compiled at install; not the editable development install of ``./dev``),
and the environment its processes run in."""
from __future__ import annotations

import os
import subprocess
import sys
from typing import Dict

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VENV = os.path.join(REPO, ".bench", "venv")
BIN = os.path.join(VENV, "bin")
PYTHON = os.path.join(BIN, "python")
COMPAT = os.path.join(BIN, "compat")


def user_env(**extra: str) -> Dict[str, str]:
    """This environment as a user's shell has it: bytecode written and read (no
    PYTHONDONTWRITEBYTECODE), nothing of the source tree on the path."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH", "VIRTUAL_ENV", "COMPAT_DEBUG")}
    env.update(extra)
    return env


def build(reuse: bool = False) -> None:
    """A fresh venv with the repository installed (``reuse``: keep the venv and its
    dependencies, reinstall only compat)."""
    pip = [PYTHON, "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if reuse and os.path.exists(PYTHON):
        _quiet(pip + ["--no-deps", "--force-reinstall", REPO])
    else:
        _quiet([sys.executable, "-m", "venv", "--clear", VENV])
        _quiet(pip + [REPO + "[fast]"])
    where = subprocess.run([PYTHON, "-c", "import compat, sys; sys.stdout.write(compat.__file__)"],
                           capture_output=True, text=True, check=True, env=user_env(), cwd=VENV).stdout
    if not where.startswith(VENV):
        raise SystemExit(f"bench: the installed build imports compat from {where}, not from {VENV}")


def version(module: str) -> str:
    """The installed version of a distribution in the venv, or 'not installed'."""
    code = ("import importlib.metadata as m, sys\n"
            f"try: sys.stdout.write(m.version({module!r}))\n"
            "except m.PackageNotFoundError: sys.stdout.write('not installed')")
    return subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=user_env()).stdout


def _quiet(argv) -> None:
    """Run ``argv``; its output is shown only when it fails."""
    proc = subprocess.run(argv, capture_output=True, text=True, env=user_env())
    if proc.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv)} failed:\n{proc.stdout[-2000:]}{proc.stderr[-3000:]}")
