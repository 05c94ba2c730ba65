import json
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED = os.path.join(os.path.dirname(REPO), "shared")
FIXTURES = os.path.join(REPO, "fixtures")
HOSTS = os.path.join(FIXTURES, "hosts")


def shared_data(*parts):
    path = os.path.join(SHARED, "data", *parts)
    if not os.path.exists(path):
        pytest.skip(f"{path} missing (the shared/ folder beside the checkout)")
    return path


def run_compat(*args, env=None, check=None, input=None, timeout=60):
    """Run the real CLI (``compat.cli.main.main``) in this process, with ``env`` as the whole
    environment and stdin/stdout/stderr captured; returns a CompletedProcess with text output.
    ``COMPAT_TEST_SUBPROCESS=1`` runs every call in a child process instead (as
    :func:`run_compat_process` always does)."""
    if os.environ.get("COMPAT_TEST_SUBPROCESS") == "1":
        return run_compat_process(*args, env=env, check=check, input=input, timeout=timeout)
    proc = _run_in_process(args, _child_env(env), input)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def run_compat_process(*args, env=None, check=None, input=None, timeout=60):
    """Run the real CLI in a child process (``python -m compat``): the smoke tests."""
    proc = subprocess.run([sys.executable, "-m", "compat", *args], capture_output=True, text=True,
                          env=_child_env(env), input=input, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def _child_env(env):
    full_env = dict(os.environ)
    full_env.setdefault("COMPAT_CACHE_DIR", os.path.join(REPO, ".pytest_cache", "compat-cache"))
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    return full_env


def _run_in_process(args, env, input):
    import io
    from compat.cli.main import main

    saved_env, saved_streams = dict(os.environ), (sys.stdin, sys.stdout, sys.stderr)
    out, err = io.StringIO(), io.StringIO()
    os.environ.clear()
    os.environ.update(env)
    sys.stdin, sys.stdout, sys.stderr = io.StringIO(input or ""), out, err
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved_streams
        os.environ.clear()
        os.environ.update(saved_env)
    return subprocess.CompletedProcess(["compat", *map(str, args)], code, out.getvalue(), err.getvalue())


def detect_json(*args, env=None, process=False):
    """``compat detect --json``; ``process``: in a child process (LD_LIBRARY_PATH and the
    like act only when a process starts)."""
    run = run_compat_process if process else run_compat
    proc = run("detect", "--json", *args, env=env, check=0)
    return json.loads(proc.stdout)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
