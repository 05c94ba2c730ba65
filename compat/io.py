"""Reading input compat did not write: regular files only, bounded in size, and structured
text (JSON or YAML) bounded in depth and expanded size before any object is built.

Hostile input is normal input here: a FIFO or ``/dev/zero`` where a file was expected, a
"billion laughs" YAML of a few hundred bytes, or nesting deep enough to exhaust the stack all
end in :class:`BadInput` with one line, never in a hang, an out-of-memory or a traceback.
"""
from __future__ import annotations

import json
import os
import stat

from compat import limits
from compat.errors import BadInput


def read_file(path: str, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, refusing FIFOs, devices, directories and files
    over ``limit`` bytes (checked on the open file, so a swap after a check cannot fool it)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise BadInput(f"{what}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise BadInput(f"{what}: not a regular file")
        if st.st_size > limit:
            raise BadInput(f"{what}: larger than {limit} bytes")
        chunks, total = [], 0
        while True:
            chunk = os.read(fd, min(1 << 20, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
            if total > limit:      # grew while we read it
                raise BadInput(f"{what}: larger than {limit} bytes")
        return b"".join(chunks)
    except OSError as exc:
        raise BadInput(f"{what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def _check_shape(doc, what: str) -> None:
    """Depth and size of a parsed JSON document (json.loads itself bounds neither)."""
    stack, count = [(doc, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if depth > limits.DOC_DEPTH:
            raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels")
        if count > limits.DOC_NODES:
            raise BadInput(f"{what}: more than {limits.DOC_NODES} values")
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node)


def load_json(data, what: str):
    """``json.loads`` bounded: nesting, size, and numbers (no 4,300-digit integers)."""
    try:
        doc = json.loads(data)
    except RecursionError:
        raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadInput(f"{what}: not JSON ({str(exc)[:120]})") from None
    _check_shape(doc, what)
    return doc


_FLOAT = "tag:yaml.org,2002:float"
_STR = "tag:yaml.org,2002:str"


def _check_yaml(node, what: str, floats_as_text: bool) -> None:
    """Walk the composed node graph once per distinct node, computing each node's expanded
    size (aliases share nodes, so a billion laughs is counted, not built)."""
    # start-up: PyYAML (~30 ms) loads only for YAML text
    from yaml.nodes import MappingNode, ScalarNode, SequenceNode

    sizes, state = {}, {}
    stack = [(node, 1, False)]
    while stack:
        n, depth, done = stack.pop()
        key = id(n)
        if depth > limits.DOC_DEPTH:
            raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels")
        if done:
            kids = _children(n)
            size = 1 + sum(sizes[id(k)] for k in kids)
            if size > limits.DOC_NODES:
                raise BadInput(f"{what}: more than {limits.DOC_NODES} values once its aliases "
                               "are expanded")
            sizes[key], state[key] = size, 2
            continue
        if state.get(key) == 2:
            continue
        if state.get(key) == 1:
            raise BadInput(f"{what}: a YAML alias refers to itself")
        if isinstance(n, ScalarNode):
            if floats_as_text and n.tag == _FLOAT:
                n.tag = _STR
            sizes[key], state[key] = 1, 2
            continue
        if not isinstance(n, (MappingNode, SequenceNode)):
            raise BadInput(f"{what}: unexpected YAML node")
        state[key] = 1
        stack.append((n, depth, True))
        stack.extend((k, depth + 1, False) for k in _children(n))


def _children(n):
    # start-up: PyYAML (~30 ms) loads only for YAML text
    from yaml.nodes import MappingNode

    if isinstance(n, MappingNode):
        return [x for pair in n.value for x in pair]
    return list(n.value) if isinstance(n.value, list) else []


def _check_events(yaml, loader_cls, text: str, what: str) -> None:
    """Nesting and raw size from the event stream (the parsers keep an explicit stack; the
    composers recurse, and libyaml's C composer would overflow the C stack)."""
    depth = count = 0
    starts = (yaml.SequenceStartEvent, yaml.MappingStartEvent)
    ends = (yaml.SequenceEndEvent, yaml.MappingEndEvent)
    try:
        for event in yaml.parse(text, Loader=loader_cls):
            count += 1
            if isinstance(event, starts):
                depth += 1
                if depth > limits.DOC_DEPTH:
                    raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels")
            elif isinstance(event, ends):
                depth -= 1
            elif isinstance(event, yaml.DocumentStartEvent) and count > 2:
                raise BadInput(f"{what}: more than one YAML document")
            if count > 2 * limits.DOC_NODES:
                raise BadInput(f"{what}: more than {limits.DOC_NODES} values")
    except yaml.YAMLError as exc:
        raise BadInput(f"{what}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None


def load_yaml(text: str, what: str, floats_as_text: bool = False):
    """One YAML document (JSON is YAML too), safe types only, bounded before construction.

    ``floats_as_text``: a plain scalar that YAML would read as a float (``12.10``) stays the
    string it was written as, for version-like values (``12.10`` is not ``12.1``)."""
    try:
        # start-up: PyYAML (~30 ms) loads only for YAML text
        import yaml
    except ImportError:
        raise BadInput(f"{what}: YAML needs PyYAML (pip install pyyaml), or write it as JSON") from None
    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    _check_events(yaml, loader_cls, text, what)    # the composer recurses: bound depth first
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_yaml(node, what, floats_as_text)
        doc = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise BadInput(f"{what}: not valid YAML ({' '.join(str(exc).split())[:160]})") from None
    except RecursionError:
        raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels") from None
    except (ValueError, OverflowError) as exc:      # a 5,000-digit integer, a 13th month
        raise BadInput(f"{what}: a value YAML cannot read ({str(exc)[:80]})") from None
    finally:
        loader.dispose()
    return doc


def load_structured(data, what: str, floats_as_text: bool = False):
    """JSON when it parses as JSON (fast, and what most tools write), else YAML."""
    text = data.decode("utf-8", "replace") if isinstance(data, (bytes, bytearray)) else data
    stripped = text.lstrip()
    if stripped[:1] in ("{", "["):
        try:
            doc = json.loads(text)
        except RecursionError:
            raise BadInput(f"{what}: nested deeper than {limits.DOC_DEPTH} levels") from None
        except ValueError:
            pass               # YAML flow style, or broken: let YAML say
        else:
            _check_shape(doc, what)
            return doc
    return load_yaml(text, what, floats_as_text)


# -- compat's own files: the cache directory, atomic writes --------------------------------

def cache_dir() -> str:
    base = os.environ.get("COMPAT_CACHE_DIR")
    if base:
        return base
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(xdg, "compat")


def write_atomically(path: str, data: bytes) -> None:
    """Write a sibling temporary file, then rename it over ``path`` (readers never see half)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
