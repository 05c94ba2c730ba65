"""Registry credentials and the challenge flows (basic, bearer token), the way Docker and
containers/image find and use them.

Lookup order (first file that has an entry for the registry wins):
``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json``,
``${XDG_CONFIG_HOME:-~/.config}/containers/auth.json``, ``$DOCKER_CONFIG/config.json``,
``~/.docker/config.json``.  In a file: ``credHelpers[host]``, then ``auths`` (namespaced keys
``host/ns/repo`` most specific first, ``https://`` prefixes and Docker Hub aliases
normalised), then ``credsStore``.  Secrets never reach a message or a log.
"""
from __future__ import annotations

import json
import os
import re

from compat import limits
from compat.errors import BadInput
from compat.io import load_json, read_file
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}


class Credentials(Record):
    username: str = ""
    password: str = ""
    identity_token: str = ""
    origin: str = ""            # the file (or helper) that supplied them: safe to print

    def __repr__(self):        # keep secrets out of tracebacks and debug prints
        return f"Credentials(username={self.username!r}, origin={self.origin!r})"


def auth_files(env=None) -> List[str]:
    env = os.environ if env is None else env
    home = os.path.expanduser("~")
    files = []
    if env.get("REGISTRY_AUTH_FILE"):
        files.append(env["REGISTRY_AUTH_FILE"])
    if env.get("XDG_RUNTIME_DIR"):
        files.append(os.path.join(env["XDG_RUNTIME_DIR"], "containers", "auth.json"))
    files.append(os.path.join(env.get("XDG_CONFIG_HOME") or os.path.join(home, ".config"),
                              "containers", "auth.json"))
    if env.get("DOCKER_CONFIG"):
        files.append(os.path.join(env["DOCKER_CONFIG"], "config.json"))
    files.append(os.path.join(home, ".docker", "config.json"))
    return files


def _norm_key(key: str) -> str:
    key = re.sub(r"^https?://", "", key.strip()).rstrip("/")
    if key.endswith("/v1") or key.endswith("/v2"):
        key = key[:-3]
    host, _, rest = key.partition("/")
    if host in _HUB_ALIASES:
        host = "docker.io"
    return host + ("/" + rest if rest else "")


def _helper(suffix: str, server: str, origin: str) -> Optional[Credentials]:
    import subprocess   # start-up: subprocess (~3 ms) loads only for a credential helper

    try:
        proc = subprocess.run([f"docker-credential-{suffix}", "get"], input=server.encode(),
                              capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if proc.returncode != 0:
        return None
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        return None
    user, secret = data.get("Username", ""), data.get("Secret", "")
    where = f"docker-credential-{suffix} ({origin})"
    if user == "<token>":
        return Credentials(identity_token=secret, origin=where)
    return Credentials(username=user, password=secret, origin=where)


def _from_entry(entry: Dict, origin: str) -> Optional[Credentials]:
    if not isinstance(entry, dict):
        return None
    if entry.get("identitytoken"):
        return Credentials(identity_token=entry["identitytoken"], origin=origin)
    if entry.get("auth"):
        import base64   # start-up: base64 loads only for stored credentials

        try:
            user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return None
        return Credentials(username=user, password=pw, origin=origin)
    if entry.get("username"):
        return Credentials(username=entry["username"], password=entry.get("password", ""), origin=origin)
    return None


def find(registry: str, repository: str = "", env=None) -> Optional[Credentials]:
    host = _norm_key(registry)
    wanted = [f"{host}/{repository}"] if repository else []
    parts = repository.split("/")
    wanted += [f"{host}/{'/'.join(parts[:i])}" for i in range(len(parts) - 1, 0, -1)] + [host]
    for path in auth_files(env):
        if not os.path.lexists(path):
            continue
        try:        # a regular file of bounded size: a FIFO or /dev/zero here must not hang
            conf = load_json(read_file(path, limits.AUTH_FILE_BYTES, path), path)
        except BadInput:
            continue
        if not isinstance(conf, dict):
            continue
        helpers = {_norm_key(k): v for k, v in (conf.get("credHelpers") or {}).items()}
        if host in helpers:
            creds = _helper(helpers[host], registry, path)
            if creds:
                return creds
        auths = {_norm_key(k): v for k, v in (conf.get("auths") or {}).items()}
        for key in wanted:
            if key in auths:
                creds = _from_entry(auths[key], path)
                if creds:
                    return creds
        if conf.get("credsStore"):
            creds = _helper(conf["credsStore"], registry, path)
            if creds:
                return creds
    return None


_PARAM = re.compile(r'(\w{1,64})="([^"]{0,4096})"')      # bounded: linear on any header


def parse_challenge(header: str) -> Tuple[str, Dict[str, str]]:
    """``Bearer realm="...",service="...",scope="..."`` -> ("bearer", {...})."""
    scheme, _, rest = header.strip().partition(" ")
    params = dict((k.lower(), v) for k, v in _PARAM.findall(rest))
    return scheme.lower(), params


_TOKEN_RE = re.compile(r"^[\x21-\x7e]{1,65536}$")


def is_token(value: str) -> bool:
    """A bearer token that can go into a header as it is: visible ASCII only (RFC 6750's
    b64token is narrower; registries send JWTs or opaque ASCII). No CR/LF, no spaces."""
    return _TOKEN_RE.match(value) is not None


def basic_header(creds: Credentials) -> str:
    import base64       # start-up: base64 loads only for a Basic challenge

    return "Basic " + base64.b64encode(f"{creds.username}:{creds.password}".encode()).decode()
