"""Layer formats `annotate --infer` reads (spec/inference.md, "Reading the layers"): gzip
through isal or zlib, zstd through zstandard (or the stdlib's / backported compression.zstd),
plain tar; the same files give the same proposals whatever the compression, and a
decompression bomb is refused with exit 2."""
import gzip
import io
import json
import os
import random
import shutil
import subprocess
import sys
import tarfile
import zlib

import pytest
from hypothesis import given, settings, strategies as st

from compat import limits
from compat.infer import layer as L
from conftest import run_compat
from helpers import run_hostile
from test_infer import image, need_gcc, sha, wrap_index
from test_infer_robust import tiny_program

ZSTD_CLI = shutil.which("zstd")
need_zstd_cli = pytest.mark.skipif(ZSTD_CLI is None, reason="Debian's zstd is not installed")
ZSTD_MEDIA = "application/vnd.oci.image.layer.v1.tar+zstd"
#: the modules compat reads zstd with; None in sys.modules makes an import fail
ZSTD_MODULES = ("zstandard", "compression", "compression.zstd", "backports", "backports.zstd")


def zstd_cli(data: bytes, *opts: str) -> bytes:
    """``data`` compressed by Debian's zstd, fed through a pipe (so the frame header does not
    know the content size, as with a layer written while it is built)."""
    return subprocess.run([ZSTD_CLI, "-q", "-c", *opts], input=data, capture_output=True, check=True).stdout


def recompress(out: str, tag: str, new_tag: str, compress, media_type: str) -> str:
    """Copy image ``tag`` of layout ``out`` as ``new_tag`` with every layer's tar bytes
    recompressed by ``compress``; returns the new image's index reference."""
    top = json.load(open(os.path.join(out, "index.json")))
    desc = next(m for m in top["manifests"] if m["annotations"]["org.opencontainers.image.ref.name"] == tag)
    blobs = os.path.join(out, "blobs", "sha256")
    man = json.load(open(os.path.join(blobs, desc["digest"][7:])))
    for layer in man["layers"]:
        data = compress(gzip.decompress(open(os.path.join(blobs, layer["digest"][7:]), "rb").read()))
        open(os.path.join(blobs, sha(data)[7:]), "wb").write(data)
        layer.update(digest=sha(data), size=len(data), mediaType=media_type)
    body = json.dumps(man).encode()
    open(os.path.join(blobs, sha(body)[7:]), "wb").write(body)
    top["manifests"].append({"mediaType": desc["mediaType"], "digest": sha(body), "size": len(body),
                             "annotations": {"org.opencontainers.image.ref.name": new_tag}})
    json.dump(top, open(os.path.join(out, "index.json"), "w"))
    return wrap_index(out, new_tag)


def proposals(ref):
    """What --infer proposes (with its evidence), what it leaves unknown, and its notes."""
    doc = json.loads(run_compat("annotate", ref, "--infer", "--json", check=0).stdout)[0]
    return doc["proposed"], doc["unknown"], doc["notes"]


@pytest.fixture(scope="module")
def libraries(tmp_path_factory):
    """A layout whose image ``gz`` has one gzip layer of real files: an x86-64-v3 program and
    this machine's libc and Open MPI library (what the other formats are compared with)."""
    if shutil.which("gcc") is None:
        pytest.skip("no gcc")
    tmp = tmp_path_factory.mktemp("layers")
    files = {"usr/bin/app": tiny_program(tmp, "-march=x86-64-v3")}
    for lib in ("libc.so.6", "libmpi.so.40"):
        real = os.path.realpath(os.path.join("/usr/lib/x86_64-linux-gnu", lib))
        if os.path.isfile(real):
            files["usr/lib/x86_64-linux-gnu/" + lib] = open(real, "rb").read()
    out = str(tmp / "l")
    image(out, "gz", [files])
    return out


@need_gcc
def test_the_gzip_layer_proposes_from_every_file(libraries):
    proposed, _, _ = proposals(wrap_index(libraries, "gz"))
    assert proposed["cpu.target"]["value"] == "x86_64_v3" and "libc.glibc" in proposed


@need_gcc
@need_zstd_cli
@pytest.mark.parametrize("name,compress", [
    ("zstd", lambda tar: zstd_cli(tar)),
    ("zstd-frames", lambda tar: zstd_cli(tar[:len(tar) // 2]) + zstd_cli(tar[len(tar) // 2:], "-19")),
    ("plain", lambda tar: tar),
    ("gzip-members", lambda tar: gzip.compress(tar[:4096], mtime=0) + gzip.compress(tar[4096:], mtime=0)),
])
def test_every_layer_format_proposes_what_the_gzip_layer_does(libraries, name, compress):
    if name.startswith("zstd"):
        pytest.importorskip("zstandard")
    want = proposals(wrap_index(libraries, "gz"))
    got = proposals(recompress(libraries, "gz", name, compress, ZSTD_MEDIA if name.startswith("zstd") else
                               "application/vnd.oci.image.layer.v1.tar"))
    assert got == want and want[0]


@need_gcc
def test_isal_and_zlib_inflate_give_identical_results(libraries, monkeypatch):
    isal = pytest.importorskip("isal.isal_zlib")
    ref = wrap_index(libraries, "gz")
    monkeypatch.setattr(L, "inflate_module", lambda: isal)
    with_isal = run_compat("annotate", ref, "--infer", "--json", check=0).stdout
    monkeypatch.setattr(L, "inflate_module", lambda: zlib)
    with_zlib = run_compat("annotate", ref, "--infer", "--json", check=0).stdout

    def strip(doc):
        return [{k: v for k, v in d.items() if k != "seconds"} for d in json.loads(doc)]
    assert strip(with_isal) == strip(with_zlib) and json.loads(with_zlib)[0]["proposed"]


@need_gcc
@need_zstd_cli
def test_without_zstd_support_the_refusal_says_how_to_install_it(libraries, monkeypatch):
    ref = recompress(libraries, "gz", "zstd-missing", zstd_cli, ZSTD_MEDIA)
    for name in ZSTD_MODULES:
        monkeypatch.setitem(sys.modules, name, None)
    proc = run_compat("annotate", ref, "--infer", "--json", check=2)
    assert "zstd" in proc.stderr and "pip install 'hpc-compat[zstd]'" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def _tar_of_zeros(size: int):
    """A tar stream (header, then ``size`` zero bytes, then the end) written in 1 MiB pieces."""
    info = tarfile.TarInfo("var/zeros.img")
    info.size = size
    yield info.tobuf()
    for _ in range(size >> 20):
        yield bytes(1 << 20)
    yield bytes(2 * tarfile.BLOCKSIZE)


def _zstd_layout(out: str, layer: bytes) -> str:
    """A layout with one image whose only layer is the zstd blob ``layer``."""
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))

    def blob(data):
        open(os.path.join(blobs, sha(data)[7:]), "wb").write(data)
        return {"digest": sha(data), "size": len(data)}
    cfg = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": dict(blob(cfg), mediaType="application/vnd.oci.image.config.v1+json"),
                      "layers": [dict(blob(layer), mediaType=ZSTD_MEDIA)]}).encode()
    json.dump({"schemaVersion": 2, "manifests": [dict(blob(man), mediaType="application/vnd.oci.image.manifest.v1+json",
                                                      annotations={"org.opencontainers.image.ref.name": "x"})]},
              open(os.path.join(out, "index.json"), "w"))
    return wrap_index(out, "x")


@need_zstd_cli
def test_a_zstd_ratio_bomb_is_refused(tmp_path):
    """Twice the floor of zeros is a few KB of zstd, far past deflate's 1032:1."""
    pytest.importorskip("zstandard")
    size = 2 * limits.INFER_INFLATE_FLOOR_BYTES
    proc = subprocess.Popen([ZSTD_CLI, "-q", "-c"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    with proc.stdin:
        for piece in _tar_of_zeros(size):
            proc.stdin.write(piece)
    bomb = proc.stdout.read()
    assert proc.wait() == 0 and len(bomb) * limits.INFER_INFLATE_RATIO < limits.INFER_INFLATE_FLOOR_BYTES
    proc = run_hostile("annotate", _zstd_layout(str(tmp_path / "l"), bomb), "--infer", "--json")
    assert proc.returncode == 2 and "decompression bomb" in proc.stderr


@need_zstd_cli
def test_a_zstd_frame_asking_for_a_2_gib_window_is_refused(tmp_path):
    """The frame header's Window_Descriptor (RFC 8878 3.1.1.1.2) set to 2 GiB: the decoder
    would allocate it; compat's bound refuses the frame before any byte is decoded."""
    pytest.importorskip("zstandard")
    frame = bytearray(zstd_cli(b"".join(_tar_of_zeros(1 << 20))))
    assert frame[:4] == L.ZSTD_MAGIC and not frame[4] & 0x20        # no Single_Segment: a window byte follows
    frame[5] = (31 - 10) << 3                                       # exponent 21, mantissa 0: 2^31 bytes
    proc = run_hostile("annotate", _zstd_layout(str(tmp_path / "l"), bytes(frame)), "--infer", "--json")
    assert proc.returncode == 2 and "zstd" in proc.stderr and "not a readable tar stream" in proc.stderr


# -- the decompressing streams, against what was compressed ---------------------------------

def _read_all(stream, sizes):
    out, i = bytearray(), 0
    while True:
        chunk = stream.read(sizes[i % len(sizes)])
        i += 1
        if not chunk:
            return bytes(out)
        out += chunk


def _streams():
    """(name, compress, inflate module) for every decompressing path installed here."""
    gz = lambda part: gzip.compress(part, compresslevel=1, mtime=0)  # noqa: E731
    found = [("gzip-zlib", gz, zlib)]
    try:
        from isal import isal_zlib
        found.append(("gzip-isal", gz, isal_zlib))
    except ImportError:
        pass
    try:
        import zstandard  # noqa: F401
        if ZSTD_CLI:
            found.append(("zstd", lambda part: zstd_cli(part, "-1"), zlib))
    except ImportError:
        pass
    return found


@pytest.mark.parametrize("name,compress,zmod", _streams(), ids=lambda v: v if isinstance(v, str) else "")
@settings(max_examples=25, deadline=None, derandomize=True)
@given(parts=st.lists(st.binary(max_size=3000).map(lambda b: b * 7), min_size=1, max_size=4),
       sizes=st.lists(st.integers(1, 70_000), min_size=1, max_size=5))
def test_any_members_read_in_any_steps_give_the_bytes_back(name, compress, zmod, parts, sizes):
    blob = b"".join(compress(p) for p in parts)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(L, "inflate_module", lambda: zmod)
        with L.open_tar(io.BytesIO(blob), len(blob)) as stream:
            assert _read_all(stream, sizes) == b"".join(parts)


def test_plain_tar_passes_through_and_skips_forward():
    data = bytes(range(256)) * 9000
    with L.open_tar(io.BytesIO(data), len(data)) as stream:
        assert stream.read(10) == data[:10] and stream.seek(1_500_000) == 1_500_000
        assert stream.read(5) == data[1_500_000:1_500_005] and stream.tell() == 1_500_005
        with pytest.raises(OSError):
            stream.seek(0)
        assert stream.read() == data[1_500_005:] and stream.read(1) == b""


@need_zstd_cli
def test_the_stdlib_zstd_reads_frames_and_bounds_the_window(monkeypatch):
    """Python 3.14's compression.zstd (or backports.zstd) where zstandard is absent."""
    if L._stdlib_zstd() is None:
        pytest.skip("neither compression.zstd nor backports.zstd is installed")
    monkeypatch.setitem(sys.modules, "zstandard", None)
    data = b"".join(_tar_of_zeros(3 << 20))
    blob = zstd_cli(data[:5000]) + zstd_cli(data[5000:], "-19")
    with L.open_tar(io.BytesIO(blob), len(blob)) as stream:
        assert _read_all(stream, [70_000, 3]) == data
    frame = bytearray(zstd_cli(data))
    frame[5] = (31 - 10) << 3
    with pytest.raises(L.CorruptLayer, match="zstd"), L.open_tar(io.BytesIO(bytes(frame)), len(frame)) as stream:
        _read_all(stream, [1 << 20])


def test_the_reader_thread_stops_when_the_reader_stops_early():
    """Closed after one read of a 16 MiB stream: the thread ends having read at most a few
    chunks ahead, and an error on it (here a layer cut short) reaches the reader as the reader's own."""
    data = random.Random(13).randbytes(16 << 20)             # incompressible: the blob is 16 MiB
    blob = gzip.compress(data, compresslevel=1, mtime=0)
    raw = io.BytesIO(blob)
    with L.open_tar(raw, len(blob)) as stream:
        assert stream.read(3) == data[:3]
    assert not stream.thread.is_alive() and raw.tell() <= (L.AHEAD + 3) * L.BUFFER < len(blob)
    cut = blob[:len(blob) // 2]
    with pytest.raises(EOFError, match="ends early"), L.open_tar(io.BytesIO(cut), len(cut)) as stream:
        stream.seek(len(data))
    assert stream.pos < len(data) // 2 + L.BUFFER
