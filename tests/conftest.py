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
    """Run the real CLI in a child process; returns CompletedProcess with text output."""
    full_env = dict(os.environ)
    full_env.setdefault("COMPAT_CACHE_DIR", os.path.join(REPO, ".pytest_cache", "compat-cache"))
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    if env:
        full_env.update(env)
    proc = subprocess.run([sys.executable, "-m", "compat", *args], capture_output=True, text=True,
                          env=full_env, input=input, timeout=timeout)
    if check is not None:
        assert proc.returncode == check, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def detect_json(*args, env=None):
    proc = run_compat("detect", "--json", *args, env=env, check=0)
    return json.loads(proc.stdout)


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "cache"))
