"""Image references: ``host[:port]/repo[:tag][@digest]``, Docker Hub short names, and
``oci:DIR[:tag]`` layouts; and the pinned forms each runtime accepts."""
from __future__ import annotations

import re

from compat.errors import BadInput, printable
from compat.oci.digest import is_digest
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Optional

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
_REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
_TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$")         # distribution's grammar, ASCII
_HOST_RE = re.compile(r"^(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[A-Za-z0-9](?:[A-Za-z0-9.-]{0,253}[A-Za-z0-9])?))"
                      r"(?::(?P<port>[^:]*))?$")


def check_tag(tag: str, what: str) -> str:
    """``tag`` when it matches the OCI distribution tag grammar, else BadInput."""
    if not isinstance(tag, str) or not _TAG_RE.match(tag):
        raise BadInput(f"{what}: malformed tag {printable(tag, 80)}")
    return tag


def check_repository(name: str, what: str) -> str:
    """``name`` when it matches the OCI distribution repository grammar, else BadInput."""
    if not isinstance(name, str) or not _REPO_RE.match(name) or len(name) > 255:
        raise BadInput(f"{what}: malformed repository name {printable(name, 80)}")
    return name


def split_registry(registry: str):
    """``host[:port]`` / ``[v6]:port`` -> (host, port or None); BadInput when malformed or
    the port is not 1-65535."""
    m = _HOST_RE.match(registry)
    if not m:
        raise BadInput(f"malformed registry host {printable(registry, 80)}")
    port = m.group("port")
    if port is not None and (not re.match(r"^[0-9]{1,5}$", port) or not 1 <= int(port) <= 65535):
        raise BadInput(f"{printable(registry, 80)}: port must be a number from 1 to 65535")
    if m.group("v6"):
        import ipaddress    # start-up: ipaddress (~3 ms) loads only for an IPv6 registry

        try:
            ipaddress.IPv6Address(m.group("v6"))
        except ValueError:
            raise BadInput(f"malformed registry host {printable(registry, 80)}") from None
        return m.group("v6"), port and int(port)
    return m.group("name"), port and int(port)


def _loopback_v4(host: str) -> bool:
    """``127.x.y.z`` as ipaddress reads IPv4: four decimal octets of at most 255, no leading
    zeros (``127.1`` and ``127.0.0.01`` are names, not addresses)."""
    parts = host.split(".")
    return len(parts) == 4 and parts[0] == "127" and all(
        p.isascii() and p.isdigit() and len(p) <= 3 and int(p) <= 255 and (p == "0" or p[0] != "0")
        for p in parts[1:])


def is_loopback(registry: str) -> bool:
    """localhost, 127.0.0.0/8 and ::1 (by address, so 127.example.org is not loopback)."""
    try:
        host, _ = split_registry(registry)
    except BadInput:
        return False
    if host.lower() == "localhost" or _loopback_v4(host):
        return True
    if ":" not in host:
        return False        # a name, or an IPv4 address outside 127.0.0.0/8
    import ipaddress        # start-up: ipaddress (~3 ms) loads only for an IPv6 registry

    return ipaddress.IPv6Address(host).is_loopback      # checked by split_registry


class Reference(Record):
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
        return is_loopback(self.registry)

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
    for prefix in ("docker://", "oras://", "oci-archive:"):
        if text.startswith(prefix):
            if prefix != "oci-archive:":       # oras://: what compat prints for a SIF child
                text = text[len(prefix):]
            else:
                raise BadInput(f"{text}: oci-archive is not supported; unpack it and use oci:DIR")
    name, _, digest = text.partition("@")
    if digest and not is_digest(digest):
        raise BadInput(f"{printable(text, 120)}: malformed digest {printable(digest, 80)}")
    tag = None
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
        check_tag(tag, printable(text, 120))
    first, sep, rest = name.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        registry, repository = first, rest
        split_registry(registry)
    else:
        registry, repository = DOCKER_HUB, name
        if "/" not in repository:
            repository = "library/" + repository
    if not _REPO_RE.match(repository):
        raise BadInput(f"{printable(text, 120)}: malformed repository name {printable(repository, 80)}")
    if tag is None and not digest:
        tag = "latest"
    return Reference(registry=registry, repository=repository, tag=tag, digest=digest or None)


# The image name of an ``oci:DIR:NAME`` reference, as containers/image validates it (the
# ``org.opencontainers.image.ref.name`` grammar of the image-spec's annotations).
_REF_NAME_COMPONENT = r"[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*"
_REF_NAME_RE = re.compile(rf"{_REF_NAME_COMPONENT}(?:/{_REF_NAME_COMPONENT}){{0,31}}", re.ASCII)


def _parse_layout(rest: str) -> Reference:
    """``DIR[:NAME][@digest]``. As skopeo's ``oci:`` transport reads it, the directory ends at
    the first ``:`` and NAME must be a valid image name (a directory whose name holds a
    ``:`` cannot be named this way there either)."""
    path, _, digest = rest.partition("@")
    path, sep, tag = path.partition(":")
    if not path:
        raise BadInput("oci: reference without a directory")
    if sep and not (len(tag) <= 255 and _REF_NAME_RE.fullmatch(tag)):
        raise BadInput(f"oci:{printable(rest, 120)}: {printable(tag, 80)} is not an image name "
                       "(letters and digits, separated by one of - . _ : @ + or --, and /)")
    if digest and not is_digest(digest):
        raise BadInput(f"oci:{printable(rest, 120)}: malformed digest {printable(digest, 80)}")
    return Reference(layout=path, tag=tag or None, digest=digest or None)
