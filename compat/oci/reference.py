"""Image references: ``host[:port]/repo[:tag][@digest]``, Docker Hub short names, and
``oci:DIR[:tag]`` layouts; and the pinned forms each runtime accepts."""
from __future__ import annotations

import re
from typing import NamedTuple, Optional

from compat.errors import BadInput
from compat.oci.digest import is_digest

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[\w][\w.-]{0,127}$")


class Reference(NamedTuple):
    registry: str = ""              # "127.0.0.1:5000", "docker.io"; empty for layouts
    repository: str = ""
    tag: Optional[str] = None
    digest: Optional[str] = None
    layout: Optional[str] = None    # directory of an OCI layout

    @property
    def is_layout(self) -> bool:
        return self.layout is not None

    @property
    def api_host(self) -> str:
        return DOCKER_HUB_API if self.registry == DOCKER_HUB else self.registry

    @property
    def loopback(self) -> bool:
        host = self.registry.rsplit(":", 1)[0] if not self.registry.startswith("[") else self.registry
        return host in ("localhost", "127.0.0.1", "[::1]") or host.startswith("127.")

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag."""
        return self.digest or self.tag or "latest"

    def __str__(self):
        if self.layout is not None:
            return f"oci:{self.layout}" + (f":{self.tag}" if self.tag else "") + \
                (f"@{self.digest}" if self.digest else "")
        s = f"{self.registry}/{self.repository}"
        if self.tag:
            s += f":{self.tag}"
        if self.digest:
            s += f"@{self.digest}"
        return s

    def pinned(self, digest: str, fmt: str = "ref") -> str:
        """The reference of child ``digest`` in the form a runtime takes (CONTRACT section 5)."""
        if fmt == "digest":
            return digest
        if self.layout is not None:
            return f"oci:{self.layout}@{digest}"
        ref = f"{self.registry}/{self.repository}@{digest}"
        if fmt in ("apptainer", "podman"):
            return f"docker://{ref}"
        if fmt == "enroot":
            return f"docker://{self.registry}#{self.repository}@{digest}"
        return ref


def parse(text: str) -> Reference:
    text = text.strip()
    if not text:
        raise BadInput("empty reference")
    if text.startswith("oci:"):
        return _parse_layout(text[4:])
    for prefix in ("docker://", "oci-archive:"):
        if text.startswith(prefix):
            if prefix == "docker://":
                text = text[len(prefix):]
            else:
                raise BadInput(f"{text}: oci-archive is not supported; unpack it and use oci:DIR")
    name, _, digest = text.partition("@")
    if digest and not is_digest(digest):
        raise BadInput(f"{text}: malformed digest {digest!r}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        if not _TAG_RE.match(tag):
            raise BadInput(f"{text}: malformed tag {tag!r}")
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = "library/" + repository
    if not _REPO_RE.match(repository):
        raise BadInput(f"{text}: malformed repository name {repository!r}")
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest or None)


def _parse_layout(rest: str) -> Reference:
    path, _, digest = rest.partition("@")
    tag = None
    # oci:DIR:tag -- the tag is what follows the last ':' unless that part looks like a path
    if ":" in path:
        head, tail = path.rsplit(":", 1)
        if tail and "/" not in tail:
            path, tag = head, tail
    if not path:
        raise BadInput("oci: reference without a directory")
    if digest and not is_digest(digest):
        raise BadInput(f"oci:{rest}: malformed digest {digest!r}")
    return Reference(layout=path, tag=tag, digest=digest or None)
