"""Local reads of content an image or a cache directory supplies: the manifest cache, OCI
layout blobs and the layout sink, with hostile entries (FIFOs, huge files, directories,
path-shaped digests, symbolic links out of the layout)."""
import hashlib
import json
import os
import time

import pytest

from compat import limits
from compat.errors import BadInput
from compat.oci.cache import ManifestCache
from compat.oci.layout import Layout
from compat.oci.reference import Reference
from compat.oci.sink import LayoutSink, copy_image
from compat.oci.source import Source

INDEX = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                    "manifests": []}).encode()
INDEX_DIGEST = "sha256:" + hashlib.sha256(INDEX).hexdigest()


def _cache(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "c"))
    cache = ManifestCache(enabled=True)
    path = cache._path(INDEX_DIGEST)
    os.makedirs(os.path.dirname(path))
    return cache, path


@pytest.mark.parametrize("kind", ["fifo", "huge", "directory", "wrong bytes", "devzero"])
def test_hostile_cache_entry_is_a_miss(tmp_path, monkeypatch, kind):
    cache, path = _cache(tmp_path, monkeypatch)
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "huge":
        with open(path, "wb") as fh:
            fh.truncate(limits.MANIFEST_BYTES + 1)
    elif kind == "directory":
        os.mkdir(path)
    elif kind == "devzero":
        os.symlink("/dev/zero", path)
    else:
        open(path, "wb").write(INDEX + b" ")
    start = time.monotonic()
    assert cache.get(INDEX_DIGEST) is None
    assert time.monotonic() - start < 2
    cache.put(INDEX_DIGEST, INDEX)          # never raises, even where a directory is in the way


def test_good_cache_entry_is_a_hit(tmp_path, monkeypatch):
    cache, path = _cache(tmp_path, monkeypatch)
    cache.put(INDEX_DIGEST, INDEX)
    assert cache.get(INDEX_DIGEST) == INDEX


def test_cache_entry_that_does_not_parse_is_a_miss(tmp_path, monkeypatch):
    """Bytes whose digest matches but that are no manifest: the source asks the registry."""
    junk = b"not a manifest"
    digest = "sha256:" + hashlib.sha256(junk).hexdigest()
    cache, _ = _cache(tmp_path, monkeypatch)
    cache.put(digest, junk)
    src = Source(Reference(registry="127.0.0.1:9", repository="x/y", tag="1"), plain_http=True, timeout=0.5,
                 cache=cache)
    asked = []
    src.registry.get_manifest = lambda d: asked.append(d) or (d, "", INDEX)
    assert src.fetch(digest) == json.loads(INDEX)
    assert asked == [digest]


# -- layouts -----------------------------------------------------------------------------------

def _layout(tmp_path, config_digest=None, config=b'{"architecture":"amd64","os":"linux"}'):
    root = tmp_path / "layout"
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')

    def put(data):
        d = hashlib.sha256(data).hexdigest()
        (blobs / d).write_bytes(data)
        return "sha256:" + d

    cfg = config_digest or put(config)
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": cfg,
                                 "size": len(config)}, "layers": []}).encode()
    md = put(man)
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md, "size": len(man),
         "annotations": {"org.opencontainers.image.ref.name": "t"}}]}))
    return str(root), md, json.loads(man)


@pytest.mark.parametrize("digest", ["sha256:../../dev/zero", "sha256:../../../../etc/passwd",
                                    "sha512:" + "/" * 128, "sha256:" + "A" * 64])
def test_path_shaped_config_digest_never_opens_a_file(tmp_path, digest):
    root, _, doc = _layout(tmp_path, config_digest=digest)
    src = Source(Reference(layout=root, tag="t"))
    with pytest.raises(BadInput, match="malformed digest"):
        src.platform_of(doc)


def test_blob_linked_out_of_the_layout_tells_nothing(tmp_path):
    """A blob that is a symbolic link to /etc/passwd: neither its hash nor its existence shows."""
    root, _, _ = _layout(tmp_path)
    fake = "sha256:" + "1" * 64
    os.symlink("/etc/passwd", os.path.join(root, "blobs", "sha256", "1" * 64))
    gone = "sha256:" + "2" * 64
    os.symlink("/nonexistent/file", os.path.join(root, "blobs", "sha256", "2" * 64))
    msgs = []
    for d in (fake, gone):
        with pytest.raises(BadInput) as err:
            Layout(root).blob(d)
        msgs.append(str(err.value).replace(d, "D"))
    real = "sha256:" + hashlib.sha256(open("/etc/passwd", "rb").read()).hexdigest()
    assert real[7:] not in msgs[0] and msgs[0] == msgs[1]


@pytest.mark.parametrize("kind", ["fifo", "huge"])
def test_layout_blob_is_bounded(tmp_path, kind):
    root, _, _ = _layout(tmp_path)
    d = "sha256:" + "3" * 64
    path = os.path.join(root, "blobs", "sha256", "3" * 64)
    if kind == "fifo":
        os.mkfifo(path)
    else:
        with open(path, "wb") as fh:
            fh.truncate(limits.MANIFEST_BYTES + 1)
    with pytest.raises(BadInput, match="not a regular file|larger than"):
        Layout(root).blob(d)
    with pytest.raises(BadInput, match="larger than|not a regular file"):
        Source(Reference(layout=root)).blob(d, limit=10)


def test_layout_mismatch_message_has_no_other_digest(tmp_path):
    root, _, _ = _layout(tmp_path)
    d = "sha256:" + "4" * 64
    open(os.path.join(root, "blobs", "sha256", "4" * 64), "wb").write(b"other")
    with pytest.raises(BadInput, match="does not match its digest$"):
        Layout(root).blob(d)


def test_fifo_index_json_does_not_hang(tmp_path):
    root, _, _ = _layout(tmp_path)
    os.remove(os.path.join(root, "index.json"))
    os.mkfifo(os.path.join(root, "index.json"))
    with pytest.raises(BadInput, match="not a regular file"):
        Layout(root).index_json()


# -- the layout sink (annotate into oci:DIR) ------------------------------------------------------

def test_sink_refuses_path_shaped_digests_and_writes_nothing_outside(tmp_path):
    dest = tmp_path / "out" / "dest"
    sink = LayoutSink(Reference(layout=str(dest)))
    before = sorted(os.listdir(tmp_path))
    for bad in ("sha256:../../etc/passwd", "sha256:../../../x/" + "a" * 50):
        with pytest.raises(BadInput, match="malformed digest"):
            sink.has_blob(bad)
        with pytest.raises(BadInput, match="malformed digest"):
            sink.put_blob(bad, b"x")
    root, md, doc = _layout(tmp_path / "src", config_digest="sha256:../../etc/passwd")
    with pytest.raises(BadInput, match="malformed digest"):
        copy_image(Source(Reference(layout=root, tag="t")), sink, md, doc["mediaType"], doc, None)
    assert sorted(os.listdir(tmp_path)) == sorted(before + ["src"])
    assert sorted(os.listdir(dest / "blobs")) == ["sha256"]


def test_sink_copies_a_good_image(tmp_path):
    root, md, doc = _layout(tmp_path / "src")
    dest = tmp_path / "dest"
    sink = LayoutSink(Reference(layout=str(dest)))
    copy_image(Source(Reference(layout=root, tag="t")), sink, md, doc["mediaType"], doc, None)
    sink.put_manifest("v1", Layout(root).blob(md), doc["mediaType"])
    assert Layout(str(dest)).resolve(Reference(layout=str(dest), tag="v1"))[0] == md


def test_spec_lists_every_limit():
    import re

    from conftest import REPO
    spec = open(os.path.join(REPO, "spec", "oci.md")).read()
    names = [n for n in vars(limits) if re.fullmatch(r"[A-Z][A-Z0-9_]+", n) and n != "MiB"]
    assert names and [n for n in names if f"`{n}`" not in spec] == []


def test_layout_open_blob_is_confined_and_regular(tmp_path):
    root, md, _ = _layout(tmp_path)
    with Source(Reference(layout=root)).open_blob(md) as fh:
        assert hashlib.sha256(fh.read()).hexdigest() == md[7:]
    os.symlink("/etc/passwd", os.path.join(root, "blobs", "sha256", "5" * 64))
    os.mkfifo(os.path.join(root, "blobs", "sha256", "6" * 64))
    with pytest.raises(BadInput, match="not in the layout"):
        Layout(root).open_blob("sha256:" + "5" * 64)
    with pytest.raises(BadInput, match="not a regular file"):
        Layout(root).open_blob("sha256:" + "6" * 64)
    with pytest.raises(BadInput, match="malformed digest"):
        Layout(root).open_blob("sha256:../../dev/zero")


def test_index_json_linked_out_of_the_layout(tmp_path):
    root, _, _ = _layout(tmp_path)
    os.remove(os.path.join(root, "index.json"))
    os.symlink("/etc/passwd", os.path.join(root, "index.json"))
    with pytest.raises(BadInput, match="index.json: not in the layout$"):
        Layout(root).index_json()


@pytest.mark.parametrize("kind", ["fifo", "devzero", "huge"])
def test_hostile_credentials_file_is_skipped(tmp_path, kind):
    """A FIFO, /dev/zero or a huge file where auth.json is expected: skipped, the next file used."""
    from compat.oci import auth
    bad = tmp_path / "auth.json"
    if kind == "fifo":
        os.mkfifo(bad)
    elif kind == "devzero":
        os.symlink("/dev/zero", bad)
    else:
        with open(bad, "wb") as fh:
            fh.truncate(limits.AUTH_FILE_BYTES + 1)
    docker = tmp_path / "docker"
    docker.mkdir()
    (docker / "config.json").write_text(json.dumps({"auths": {"r.example": {"username": "u", "password": "p"}}}))
    start = time.monotonic()
    creds = auth.find("r.example", "x/y", env={"REGISTRY_AUTH_FILE": str(bad), "DOCKER_CONFIG": str(docker),
                                               "HOME": str(tmp_path)})
    assert creds.username == "u" and time.monotonic() - start < 2


def test_annotate_into_a_layout_from_a_hostile_variant(tmp_path):
    """The CLI end to end: a variant whose config digest is path-shaped; exit 2, one line,
    nothing created outside the destination."""
    from helpers import run_hostile
    root, _, _ = _layout(tmp_path / "src", config_digest="sha256:../../../../etc/passwd")
    before = sorted(os.listdir(tmp_path))
    proc = run_hostile("annotate", f"oci:{tmp_path}/dest:v1", "--variant", f"oci:{root}:t",
                       "os.kernel=>=5.10")
    assert proc.returncode == 2 and "malformed digest" in proc.stderr, proc.stderr
    assert "root:" not in proc.stderr
    assert sorted(set(os.listdir(tmp_path)) - {"dest"}) == before


@pytest.mark.parametrize("text", ["oci:/tmp/x:a b", "oci:/tmp/D4:../../evil", "oci:/tmp/x:", "oci:/tmp/x:-a",
                                  "oci:/tmp/x:a\x01"])
def test_layout_image_names_follow_the_ref_name_grammar(text):
    """skopeo's oci: transport splits DIR at the first ':' and validates the name; a name that
    is not one is bad input, never a part of the directory path (annotate would write there)."""
    from compat.errors import BadInput
    from compat.oci.reference import parse

    with pytest.raises(BadInput, match="is not an image name"):
        parse(text)


def test_annotate_into_a_layout_with_a_traversing_name_writes_nothing(tmp_path):
    from conftest import FIXTURES
    from helpers import run_hostile

    proc = run_hostile("annotate", f"oci:{tmp_path}/D4:../../evil", "--variant", f"oci:{FIXTURES}/demo")
    assert proc.returncode == 2 and "is not an image name" in proc.stderr
    assert os.listdir(tmp_path) == []


def test_cache_directories_are_private(tmp_path, monkeypatch):
    """Cached digests say what a user runs: the cache is 0700 like its 0600 files."""
    from compat.oci.cache import ManifestCache
    from compat.oci.digest import digest_of

    monkeypatch.setenv("COMPAT_CACHE_DIR", str(tmp_path / "c"))
    monkeypatch.delenv("COMPAT_NO_CACHE", raising=False)
    data = b'{"schemaVersion": 2}'
    ManifestCache(enabled=True).put(digest_of(data), data)
    assert os.stat(tmp_path / "c").st_mode & 0o777 == 0o700
    assert ManifestCache(enabled=True).get(digest_of(data)) == data
