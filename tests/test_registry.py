"""compat select against a real registry (distribution) on 127.0.0.1."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import FIXTURES, HOSTS, run_compat
from helpers import cuda124_digest
from registry_harness import (DISTRIBUTION, FaultProxy, RunningRegistry, TokenIssuer, make_htpasswd,
                              make_tls, push_layout)

pytestmark = pytest.mark.skipif(DISTRIBUTION is None, reason="docker-registry (distribution) not installed")
DEMO = os.path.join(FIXTURES, "demo")
H100 = ["--sysroot", os.path.join(HOSTS, "nvidia-4xh100-nonvml")]


@pytest.fixture(scope="module")
def plain(tmp_path_factory):
    reg = RunningRegistry(tmp_path_factory.mktemp("plain"))
    index = push_layout(DEMO, reg.host, "hpc/lammps", "2024")
    reg.index = index
    yield reg
    reg.stop()


def test_select_by_tag_pins_the_child_digest(plain):
    proc = run_compat("select", f"{plain.host}/hpc/lammps:2024", *H100, check=0)
    assert proc.stdout.strip() == f"{plain.host}/hpc/lammps@{cuda124_digest()}"


@pytest.mark.parametrize("fmt,shape", [
    ("digest", "{d}"), ("apptainer", "docker://{h}/hpc/lammps@{d}"), ("podman", "docker://{h}/hpc/lammps@{d}"),
    ("enroot", "docker://{h}#hpc/lammps@{d}")])
def test_formats(plain, fmt, shape):
    proc = run_compat("select", f"{plain.host}/hpc/lammps:2024", "--format", fmt, *H100, check=0)
    assert proc.stdout.strip() == shape.format(h=plain.host, d=cuda124_digest())


def test_select_by_index_digest(plain):
    proc = run_compat("select", f"{plain.host}/hpc/lammps@{plain.index}", *H100, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())


def test_json_output(plain):
    proc = run_compat("select", f"{plain.host}/hpc/lammps:2024", "--json", *H100, check=0)
    doc = json.loads(proc.stdout)
    assert doc["selected"] == cuda124_digest() and doc["indexDigest"] == plain.index
    assert doc["candidates"][0]["verdict"] == "compatible"
    assert len(doc["candidates"]) == 16


def test_warm_cache_costs_one_head_request(plain, tmp_path):
    import compat
    from compat.api import resolve
    from compat.oci import source as source_mod

    h = compat.detect(sysroot=os.path.join(HOSTS, "nvidia-4xh100-nonvml"))
    counts = []
    orig = source_mod.Source.close

    def spy(self):
        counts.append(self.registry.requests)
        orig(self)

    source_mod.Source.close = spy
    try:
        resolve(f"{plain.host}/hpc/lammps:2024", host=h, referrers=False)     # cold: HEAD + GET
        resolve(f"{plain.host}/hpc/lammps:2024", host=h, referrers=False)     # warm: HEAD only
        resolve(f"{plain.host}/hpc/lammps@{plain.index}", host=h, referrers=False)  # pinned, warm: nothing
        # by default, the one amd64 candidate without compat annotations is looked up for NFD
        # artifacts (referrers API -> 404 -> referrers tag -> 404), then the index: the API
        # said 404 (no API: distribution-spec), so only its referrers tag -> 404
        resolve(f"{plain.host}/hpc/lammps:2024", host=h)
    finally:
        source_mod.Source.close = orig
    assert counts == [2, 1, 0, 1 + 2 + 1]


def test_referrers_api_asked_until_it_answers_404_and_nothing_is_lost(tmp_path_factory):
    """distribution-spec: a registry with the referrers API never answers it 404. After one
    404 the client asks only the referrers tag, and still finds what is attached there; a
    registry that has the API (the proxy here) is asked it for every subject."""
    from compat.oci.reference import Reference
    from compat.oci.registry import Registry
    from registry_harness import attach_in_registry

    reg = RunningRegistry(tmp_path_factory.mktemp("referrers"))
    try:
        push_layout(DEMO, reg.host, "hpc/lammps", "2024")
        index = json.load(open(os.path.join(DEMO, "blobs", "sha256", _top_digest()[7:])))
        first, second = index["manifests"][:2]
        attached = attach_in_registry(reg.host, "hpc/lammps", second, "version: v1alpha1\n")
        client = Registry(Reference(registry=reg.host, repository="hpc/lammps", tag="2024"), plain_http=True)
        assert client.referrers(first["digest"]) == [] and client.requests == 2      # API 404, tag 404
        assert client.referrers(second["digest"]) == [attached] and client.requests == 3   # the tag only
        client.close()
        api = FaultProxy(reg.port)
        api.referrers = {first["digest"]: [], second["digest"]: [attached]}
        try:
            client = Registry(Reference(registry=api.host, repository="hpc/lammps", tag="2024"), plain_http=True)
            assert client.referrers(first["digest"]) == [] and client.referrers(second["digest"]) == [attached]
            assert [p.split("/")[4] for _, p in api.seen] == ["referrers", "referrers"]
            client.close()
        finally:
            api.stop()
    finally:
        reg.stop()


def _top_digest():
    return json.load(open(os.path.join(DEMO, "index.json")))["manifests"][0]["digest"]


def test_missing_tag_is_exit_2_one_line(plain):
    proc = run_compat("select", f"{plain.host}/hpc/lammps:nope", *H100)
    assert proc.returncode == 2
    assert "not found" in proc.stderr and "MANIFEST_UNKNOWN" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_connection_refused_is_exit_2(tmp_path):
    proc = run_compat("select", "127.0.0.1:9/x/y:1", "--timeout", "1", *H100)
    assert proc.returncode == 2 and "cannot reach 127.0.0.1:9" in proc.stderr


def test_wrong_digest_is_rejected(tmp_path_factory):
    reg = RunningRegistry(tmp_path_factory.mktemp("tamper"))
    try:
        push_layout(DEMO, reg.host, "hpc/lammps", "2024")
        child = cuda124_digest()
        idx = json.load(open(os.path.join(DEMO, "index.json")))["manifests"][0]["digest"]
        # the registry now serves other bytes under the index digest
        path = reg.blob_path(idx)
        data = open(path, "rb").read()
        open(path, "wb").write(data.replace(b"CUDA 12.4", b"CUDA 99.9"))
        proc = run_compat("select", f"{reg.host}/hpc/lammps@{idx}", *H100)
        assert proc.returncode == 2
        assert "does not match its digest" in proc.stderr
        assert child  # the pinned child is never printed from tampered content
        assert proc.stdout == ""
    finally:
        reg.stop()


@pytest.fixture(scope="module")
def faulty(plain):
    proxy = FaultProxy(plain.port)
    yield proxy
    proxy.stop()


def test_429_with_retry_after_is_retried(faulty):
    faulty.faults = [(429, {"Retry-After": "1"}), (503, {})]
    proc = run_compat("select", f"{faulty.host}/hpc/lammps:2024", *H100, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())
    assert faulty.faults == []


def test_persistent_5xx_gives_up_with_a_reason(faulty):
    faulty.faults = [(503, {})] * 10
    proc = run_compat("select", f"{faulty.host}/hpc/lammps:2024", *H100)
    assert proc.returncode == 2
    assert "503" in proc.stderr and "tries" in proc.stderr
    faulty.faults = []


def test_persistent_429_says_rate_limited(faulty):
    faulty.faults = [(429, {"Retry-After": "0"})] * 10
    proc = run_compat("select", f"{faulty.host}/hpc/lammps:2024", *H100)
    assert proc.returncode == 2 and "rate limited (429)" in proc.stderr
    faulty.faults = []


def test_retry_after_beyond_the_bound_fails_fast(faulty):
    faulty.faults = [(429, {"Retry-After": "3600"})]
    proc = run_compat("select", f"{faulty.host}/hpc/lammps:2024", *H100)
    assert proc.returncode == 2 and "exceeds" in proc.stderr
    faulty.faults = []


def test_timeout_is_bounded(faulty):
    faulty.faults = [("hang", 3)] * 6
    proc = run_compat("select", f"{faulty.host}/hpc/lammps:2024", "--timeout", "0.5", *H100)
    assert proc.returncode == 2 and "timed out after 0.5 s" in proc.stderr
    faulty.faults = []


# -- TLS -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tls_registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    ca, cert, key = make_tls(d)
    reg = RunningRegistry(d / "reg", tls=(cert, key))
    reg.ca = ca
    push_layout(DEMO, reg.host, "hpc/lammps", "2024", plain_http=False,
                env={"SSL_CERT_FILE": ca, "COMPAT_CACHE_DIR": str(d / "cache")})
    yield reg
    reg.stop()


def test_tls_with_trusted_self_signed_ca(tls_registry):
    proc = run_compat("select", f"{tls_registry.host}/hpc/lammps:2024", *H100,
                      env={"SSL_CERT_FILE": tls_registry.ca}, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())


def test_tls_with_untrusted_ca_fails_clearly(tls_registry):
    proc = run_compat("select", f"{tls_registry.host}/hpc/lammps:2024", *H100, env={"SSL_CERT_FILE": "/dev/null"})
    assert proc.returncode == 2 and "TLS failed" in proc.stderr and "CERTIFICATE_VERIFY_FAILED" in proc.stderr


# -- basic auth (htpasswd) -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def basic_registry(tmp_path_factory):
    d = tmp_path_factory.mktemp("basic")
    reg = RunningRegistry(d / "reg", htpasswd=make_htpasswd(d, "alice", "s3cret-pw"))
    conf = d / "docker"
    conf.mkdir()
    import base64
    (conf / "config.json").write_text(json.dumps({"auths": {f"http://{reg.host}": {
        "auth": base64.b64encode(b"alice:s3cret-pw").decode()}}}))
    reg.docker_config = str(conf)
    push_layout(DEMO, reg.host, "hpc/lammps", "2024", env={"DOCKER_CONFIG": str(conf)})
    yield reg
    reg.stop()


def test_basic_auth_from_docker_config(basic_registry):
    proc = run_compat("select", f"{basic_registry.host}/hpc/lammps:2024", *H100,
                      env={"DOCKER_CONFIG": basic_registry.docker_config, "HOME": "/nonexistent"}, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())
    assert "s3cret" not in proc.stdout + proc.stderr


def test_basic_auth_from_registry_auth_file(basic_registry, tmp_path):
    f = tmp_path / "auth.json"
    f.write_text(json.dumps({"auths": {f"{basic_registry.host}/hpc": {"username": "alice", "password": "s3cret-pw"}}}))
    proc = run_compat("select", f"{basic_registry.host}/hpc/lammps:2024", *H100,
                      env={"REGISTRY_AUTH_FILE": str(f), "HOME": "/nonexistent"}, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())


def test_basic_auth_without_credentials_is_401(basic_registry):
    proc = run_compat("select", f"{basic_registry.host}/hpc/lammps:2024", *H100,
                      env={"HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"})
    assert proc.returncode == 2 and "unauthorized (no credentials found)" in proc.stderr


def test_wrong_password_never_printed(basic_registry, tmp_path):
    f = tmp_path / "auth.json"
    f.write_text(json.dumps({"auths": {basic_registry.host: {"username": "alice", "password": "WRONG-pw-42"}}}))
    proc = run_compat("select", f"{basic_registry.host}/hpc/lammps:2024", *H100,
                      env={"REGISTRY_AUTH_FILE": str(f), "HOME": "/nonexistent"})
    assert proc.returncode == 2 and "unauthorized (credentials from" in proc.stderr
    assert "WRONG-pw-42" not in proc.stderr + proc.stdout


def test_credential_helper(basic_registry, tmp_path):
    helper = tmp_path / "bin" / "docker-credential-compattest"
    helper.parent.mkdir()
    helper.write_text('#!/bin/sh\nread server\necho "{\\"ServerURL\\":\\"$server\\",'
                      '\\"Username\\":\\"alice\\",\\"Secret\\":\\"s3cret-pw\\"}"\n')
    helper.chmod(0o755)
    conf = tmp_path / "docker"
    conf.mkdir()
    (conf / "config.json").write_text(json.dumps({"credHelpers": {basic_registry.host: "compattest"}}))
    proc = run_compat("select", f"{basic_registry.host}/hpc/lammps:2024", *H100,
                      env={"DOCKER_CONFIG": str(conf), "HOME": "/nonexistent",
                           "PATH": f"{helper.parent}:{os.environ['PATH']}"}, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())


# -- token auth ----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def token_registry(tmp_path_factory):
    pytest.importorskip("cryptography")
    d = tmp_path_factory.mktemp("token")
    issuer = TokenIssuer(d, "bob", "t0ken-pw")
    reg = RunningRegistry(d / "reg", token=issuer.config())
    conf = d / "auth.json"
    conf.write_text(json.dumps({"auths": {reg.host: {"username": "bob", "password": "t0ken-pw"}}}))
    push_layout(DEMO, reg.host, "hpc/lammps", "2024", env={"REGISTRY_AUTH_FILE": str(conf)})
    reg.issuer = issuer
    yield reg
    reg.stop()
    issuer.stop()


def test_token_auth_anonymous_pull(token_registry):
    token_registry.issuer.requests.clear()
    proc = run_compat("select", f"{token_registry.host}/hpc/lammps:2024", *H100,
                      env={"HOME": "/nonexistent", "DOCKER_CONFIG": "/nonexistent"}, check=0)
    assert proc.stdout.strip().endswith(cuda124_digest())
    assert token_registry.issuer.requests == [(None, ["repository:hpc/lammps:pull"])]


def test_token_scopes_are_per_repository(token_registry, tmp_path):
    """compat asks for a token per scope it is challenged with (oras-py reuses one)."""
    f = tmp_path / "auth.json"
    f.write_text(json.dumps({"auths": {token_registry.host: {"username": "bob", "password": "t0ken-pw"}}}))
    push_layout(DEMO, token_registry.host, "hpc/other", "1", env={"REGISTRY_AUTH_FILE": str(f)})
    scopes = {(s.rsplit(":", 1)[0], frozenset(s.rsplit(":", 1)[1].split(",")))
              for _, ss in token_registry.issuer.requests for s in ss}
    # distribution lists the actions in either order
    assert ("repository:hpc/other", frozenset({"pull", "push"})) in scopes


# -- a real consumer -----------------------------------------------------------------------------

@pytest.mark.skipif(not shutil.which("skopeo"), reason="skopeo not installed")
def test_skopeo_copies_the_selected_reference(plain, tmp_path):
    ref = run_compat("select", f"{plain.host}/hpc/lammps:2024", *H100, check=0).stdout.strip()
    out = subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{ref}", f"oci:{tmp_path}/copy:x"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    copied = json.load(open(tmp_path / "copy" / "index.json"))["manifests"][0]["digest"]
    assert copied == cuda124_digest()
