"""Node inventory: many node profiles at once, from the sources a site already has.

``--nodes SOURCE`` (repeatable) is one of:

* a directory, or a tarball (``.tar``, ``.tar.gz``, ``.tgz``), of ``compat detect --json``
  files (or NFD NodeFeature documents) named by node: ``gpu001.json`` is node ``gpu001``;
* a mapping file (JSON or YAML) from Slurm hostlist expressions to one profile each:
  ``{"gpu[001-064]": "h100.json"}`` (paths relative to the mapping file);
* an NFD ``NodeFeatureList`` (``kubectl get nodefeatures -A -o json``);
* Slurm's own view: ``scontrol show nodes --json`` or ``sinfo -N -h -o '%N %P %f'`` text,
  for node names, partitions and features (no profiles: they come from the other sources).

A node whose profile cannot be read is left out with its reason (``Inventory.problems``);
the rest are planned. Identical profile documents are parsed once (a 10,000-node directory
of 50 node types costs 50 profile validations).
"""
from __future__ import annotations

import json
import os
import tarfile

from compat import limits
from compat.errors import BadInput, CompatError, printable
from compat import host as host_mod
from compat.host.profile import Host
from compat.io import load_structured, read_file
from compat.nfd.nodefeature import from_export, is_nfd_document, to_host
from compat.plan import hostlist
from compat.plan.classes import class_key
from compat.record import Record

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Dict, List, Optional, Tuple

_PROFILE_EXT = (".json", ".yaml", ".yml")


class NodeClass(Record):
    id: str                          # c1, c2, ... in the order of their first node
    host: Host                       # the profile of the class's first node
    nodes: Tuple[str, ...]

    @property
    def hostlist(self) -> str:
        return hostlist.compress(self.nodes)


class Inventory(Record):
    hosts: Dict[str, Host]                       # node -> profile
    partitions: Dict[str, Tuple[str, ...]]       # node -> Slurm partitions (when a Slurm source said)
    features: Dict[str, Tuple[str, ...]]         # node -> Slurm features (when a Slurm source said)
    problems: Dict[str, str]                     # node -> why it has no profile

    def classes(self, nodes: Optional[List[str]] = None) -> List[NodeClass]:
        """The nodes (default: every node with a profile) grouped by :func:`class_key`."""
        groups: Dict[object, List[str]] = {}
        first: Dict[object, Host] = {}
        keys: Dict[int, object] = {}     # nodes read from one document share one Host object
        for name in sorted(self.hosts if nodes is None else (n for n in nodes if n in self.hosts)):
            host = self.hosts[name]
            key = keys.get(id(host))
            if key is None:
                key = keys[id(host)] = class_key(host)
            if key not in groups:
                groups[key], first[key] = [], host
            groups[key].append(name)
        return [NodeClass(f"c{i + 1}", first[k], tuple(names)) for i, (k, names) in enumerate(groups.items())]

    def partition_nodes(self, partition: str) -> List[str]:
        return sorted(n for n, parts in self.partitions.items() if partition in parts)


class _Reader:
    """Reads sources into one inventory; profile documents parsed once per distinct text."""

    def __init__(self):
        self.hosts: Dict[str, Host] = {}
        self.partitions: Dict[str, Tuple[str, ...]] = {}
        self.features: Dict[str, Tuple[str, ...]] = {}
        self.problems: Dict[str, str] = {}
        self._seen: Dict[bytes, object] = {}

    def add_host(self, node: str, host) -> None:
        if len(self.hosts) + len(self.problems) >= limits.PLAN_NODES and node not in self.hosts:
            raise BadInput(f"--nodes: more than {limits.PLAN_NODES} nodes (limits.PLAN_NODES)")
        if isinstance(host, str):
            self.problems[node] = host
            self.hosts.pop(node, None)
        else:
            self.hosts[node] = host
            self.problems.pop(node, None)

    def profile(self, raw: bytes, what: str):
        """A Host, or the text of why not (cached on the document's bytes)."""
        hit = self._seen.get(raw)
        if hit is None:
            hit = self._seen[raw] = _profile(raw, what)
        return hit

    def inventory(self) -> Inventory:
        for node in self.partitions:
            if node not in self.hosts and node not in self.problems:
                self.problems[node] = "no profile in the inventory (Slurm lists the node, no profile source does)"
        return Inventory(self.hosts, self.partitions, self.features, self.problems)


def _profile(raw: bytes, what: str):
    try:
        text = raw.decode("utf-8")
        data = load_structured(text, what)
        return _host_of(data, what)
    except UnicodeDecodeError:
        return f"{what}: not UTF-8 text"
    except CompatError as exc:
        return printable(str(exc), 300)


def _host_of(data, what: str) -> Host:
    if is_nfd_document(data):
        return to_host(from_export(data), what)
    return host_mod.from_data(data, what)


def _node_name(filename: str) -> Optional[str]:
    base = os.path.basename(filename)
    for ext in _PROFILE_EXT:
        if base.endswith(ext) and len(base) > len(ext) and not base.startswith("."):
            return base[: -len(ext)]
    return None


def read(sources: List[str]) -> Inventory:
    """Read every source (paths) into one inventory; later sources win for a node's profile."""
    r = _Reader()
    for src in sources:
        _read_source(r, os.fspath(src))
    return r.inventory()


def from_hosts(hosts: Dict[str, Host]) -> Inventory:
    """An inventory from profiles already in memory (the API's ``hosts={node: Host}``)."""
    for name, h in hosts.items():
        if not isinstance(h, Host):
            raise TypeError(f"hosts[{name!r}]: expected a compat.Host, got {type(h).__name__}")
    return Inventory(dict(hosts), {}, {}, {})


def _read_source(r: _Reader, src: str) -> None:
    if os.path.isdir(src):
        _read_dir(r, src)
    elif src.endswith((".tar", ".tar.gz", ".tgz")):
        _read_tar(r, src)
    else:
        raw = read_file(src, limits.PLAN_SOURCE_BYTES, f"--nodes {src}")
        _read_file(r, src, raw)


def _read_dir(r: _Reader, src: str) -> None:
    try:
        names = sorted(os.listdir(src))
    except OSError as exc:
        raise BadInput(f"--nodes {src}: {exc.strerror}") from None
    for name in names:
        node = _node_name(name)
        path = os.path.join(src, name)
        if node is None or not os.path.isfile(path):
            continue
        try:
            raw = read_file(path, limits.HOST_FILE_BYTES, f"--nodes {path}")
        except CompatError as exc:
            r.add_host(node, printable(str(exc), 300))
            continue
        r.add_host(node, r.profile(raw, f"--nodes {path}"))


def _read_tar(r: _Reader, src: str) -> None:
    try:
        with tarfile.open(src) as tar:
            for i, member in enumerate(tar):
                if i >= limits.PLAN_TAR_MEMBERS:
                    raise BadInput(f"--nodes {src}: more than {limits.PLAN_TAR_MEMBERS} members "
                                   "(limits.PLAN_TAR_MEMBERS)")
                node = _node_name(member.name)
                if node is None or not member.isfile():
                    continue
                what = f"--nodes {src}:{printable(member.name, 200)}"
                if member.size > limits.HOST_FILE_BYTES:
                    r.add_host(node, f"{what}: larger than {limits.HOST_FILE_BYTES} bytes")
                    continue
                r.add_host(node, r.profile(tar.extractfile(member).read(), what))
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BadInput(f"--nodes {src}: not a readable tarball ({printable(str(exc), 200)})") from None


def _read_file(r: _Reader, src: str, raw: bytes) -> None:
    what = f"--nodes {src}"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadInput(f"{what}: not UTF-8 text") from None
    try:
        data = load_structured(text, what)
    except BadInput:
        data = None
    if isinstance(data, dict) and data.get("kind") == "NodeFeatureList":
        _read_nfd_list(r, data, what)
    elif isinstance(data, dict) and isinstance(data.get("nodes"), list):
        _read_scontrol(r, data, what)
    elif isinstance(data, dict) and data and "schema" not in data and "kind" not in data:
        _read_mapping(r, data, src)
    elif data is None or isinstance(data, str):
        _read_sinfo(r, text, what)
    else:
        raise BadInput(f"{what}: not an inventory (a directory or tarball of profiles, a hostlist mapping, "
                       "an NFD NodeFeatureList, scontrol show nodes --json or sinfo -N output)")


def _read_nfd_list(r: _Reader, data: dict, what: str) -> None:
    items = data.get("items")
    if not isinstance(items, list):
        raise BadInput(f"{what}: NodeFeatureList without an items list")
    for i, item in enumerate(items):
        meta = item.get("metadata") if isinstance(item, dict) else None
        meta = meta if isinstance(meta, dict) else {}
        labels = meta.get("labels") if isinstance(meta.get("labels"), dict) else {}
        node = labels.get("nfd.node.kubernetes.io/node-name") or meta.get("name")
        if not isinstance(node, str) or not node:
            raise BadInput(f"{what}: items[{i}] names no node (metadata.name)")
        raw = json.dumps({"kind": "NodeFeature", "spec": item.get("spec")}, sort_keys=True).encode()
        r.add_host(node, r.profile(raw, f"{what} items[{i}]"))


def _features_of(value) -> Tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v) for v in value)
    if isinstance(value, str):
        return tuple(f for f in value.split(",") if f and f != "(null)")
    return ()


def _read_scontrol(r: _Reader, data: dict, what: str) -> None:
    for i, node in enumerate(data["nodes"]):
        if not isinstance(node, dict) or not isinstance(node.get("name"), str):
            raise BadInput(f"{what}: nodes[{i}] has no name")
        name = node["name"]
        parts = node.get("partitions")
        r.partitions[name] = tuple(str(p) for p in parts) if isinstance(parts, list) else _features_of(parts)
        r.features[name] = _features_of(node.get("active_features", node.get("features")))


def _read_sinfo(r: _Reader, text: str, what: str) -> None:
    """``sinfo -N -h -o '%N %P %f'``: one line per node and partition (``*`` marks the default)."""
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0] == "NODELIST":
            continue
        if len(words) > 3:
            raise BadInput(f"{what}: line {n}: expected 'NODE PARTITION FEATURES' (sinfo -N -h -o '%N %P %f')")
        for name in hostlist.expand(words[0]):
            if len(words) > 1:
                part = words[1].rstrip("*")
                r.partitions[name] = tuple(dict.fromkeys(r.partitions.get(name, ()) + (part,)))
            if len(words) > 2:
                r.features[name] = _features_of(words[2])


def _read_mapping(r: _Reader, data: dict, src: str) -> None:
    base = os.path.dirname(src)
    for expr, target in data.items():
        names = hostlist.expand(str(expr))
        if isinstance(target, dict):
            host = r.profile(json.dumps(target, sort_keys=True).encode(), f"--nodes {src} [{expr}]")
        elif isinstance(target, str):
            path = target if os.path.isabs(target) else os.path.join(base, target)
            try:
                raw = read_file(path, limits.HOST_FILE_BYTES, f"--nodes {src} [{expr}]: {path}")
                host = r.profile(raw, f"--nodes {path}")
            except CompatError as exc:
                host = printable(str(exc), 300)
        else:
            raise BadInput(f"--nodes {src}: {printable(str(expr), 60)}: expected a profile path or a profile")
        for name in names:
            r.add_host(name, host)
