"""Helpers shared by test modules (import with ``from helpers import ...``)."""
import json
import os
import resource
import subprocess
import sys

from compat.vocab.annotations import PREFIX as P  # noqa: F401 - the annotation prefix, for tests
from conftest import FIXTURES, REPO

EXIT_CODES = {0, 1, 2, 3}
HOSTILE_MEMORY = 2 << 30           # the address-space limit hostile input must stay under
HOSTILE_SECONDS = 20               # and the time


def _limit_memory(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    return apply


def run_hostile(*args, env=None, input=None, memory=HOSTILE_MEMORY, seconds=HOSTILE_SECONDS,
                cwd=None):
    """Run the CLI on hostile input under a 2 GB address-space limit and a 20 s limit, and
    assert the contract: a documented exit code, at most one line on stderr for exit 2, no
    traceback, no ``internal error``. Returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env["PYTHONPATH"] = REPO + os.pathsep + full_env.get("PYTHONPATH", "")
    full_env.pop("COMPAT_DEBUG", None)
    if env:
        full_env.update(env)
    try:
        proc = subprocess.run([sys.executable, "-m", "compat", *args], capture_output=True, text=True,
                              env=full_env, input=input, timeout=seconds, cwd=cwd,
                              preexec_fn=_limit_memory(memory))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"compat {' '.join(args)} ran past {seconds} s") from None
    assert proc.returncode in EXIT_CODES, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "internal error" not in proc.stderr, proc.stderr[-2000:]
    if proc.returncode == 2:
        assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    return proc


def cuda124_digest():
    """The digest of the demo index's amd64 CUDA 12.4 variant (what an H100 host pins)."""
    demo = os.path.join(FIXTURES, "demo")
    with open(os.path.join(demo, "index.json")) as fh:
        top = json.load(fh)["manifests"][0]["digest"]
    with open(os.path.join(demo, "blobs", "sha256", top[7:])) as fh:
        index = json.load(fh)
    return [m["digest"] for m in index["manifests"]
            if (m.get("annotations") or {}).get("org.hpc-compat.gpu.cuda.version") == "12.4"
            and m["platform"]["architecture"] == "amd64"][0]
