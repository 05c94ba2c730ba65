"""--infer on damaged and hostile images: a damaged file is reported and skipped, a huge
member is read with bounded memory, whiteouts cost linear time, every manifest digest is
checked before use, registry layers stream; the ELF and fat-binary parsers never raise."""
import gzip
import hashlib
import io
import json
import os
import shutil
import struct
import tarfile
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import elf_build as B
from helpers import run_hostile
from registry_harness import DISTRIBUTION, RunningRegistry, push_layout
from test_infer import compile_c, image, need_gcc, wrap_index

from compat import limits
from compat.infer import fatbin as F
from compat.infer.analyse import Finding, analyse_elf
from compat.infer.blob import Blob
from compat.infer.scan import scan
from compat.oci.reference import parse as parse_ref
from compat.oci.source import Source


def sha(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def _sections(data):
    """{name: (header offset, sh_offset, sh_size)} of an ELF64 LE file (read here with struct,
    independently of compat's reader)."""
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 58)
    heads = [shoff + i * shentsize for i in range(shnum)]
    str_off, = struct.unpack_from("<Q", data, heads[shstrndx] + 24)
    out = {}
    for h in heads:
        name, = struct.unpack_from("<I", data, h)
        end = data.index(b"\0", str_off + name)
        off, size = struct.unpack_from("<QQ", data, h + 24)
        out[data[str_off + name:end].decode()] = (h, off, size)
    return out


def _patch(data, name, field, fmt, value):
    """Set one section-header field (byte offset ``field`` in Elf64_Shdr) of section ``name``."""
    h = _sections(data)[name][0]
    out = bytearray(data)
    struct.pack_into(fmt, out, h + field, value)
    return bytes(out)


def tiny_program(tmp_path, march: str) -> bytes:
    """``int main`` built with gcc for ``march`` (``-mneeded`` records the ISA level)."""
    build = tmp_path / "b"
    build.mkdir(exist_ok=True)
    (build / "p.c").write_text("int main(void){return 0;}\n")
    return compile_c(build, march.split("=")[1], march, "-mneeded")


def infer_hostile(ref):
    proc = run_hostile("annotate", ref, "--infer", "--json")
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)[0]


@need_gcc
def test_damaged_files_are_reported_and_skipped(tmp_path):
    good = tiny_program(tmp_path, "-march=x86-64-v3")
    bad_link = _patch(good, ".dynamic", 40, "<I", 999)                  # sh_link to no section
    bad_note = _patch(good, ".note.gnu.property", 32, "<Q", 20)         # the note's descriptor cut short
    cut = good[:len(good) // 2]                                         # section headers past the end
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/bin/bad-link": bad_link, "usr/bin/bad-note": bad_note, "usr/bin/cut": cut},
                     {"usr/bin/good": good}])
    doc = infer_hostile(wrap_index(out, "x"))
    assert doc["proposed"]["cpu.target"]["value"] == "x86_64_v3"
    notes = "\n".join(doc["notes"])
    assert "/usr/bin/bad-link: damaged (.dynamic: .dynamic: bad string table link (sh_link 999))" in notes
    assert "/usr/bin/bad-note: damaged (notes: truncated note in .note.gnu.property)" in notes
    assert "/usr/bin/cut: damaged (ELF header: section headers past the end of the file)" in notes
    # what the damaged files still say is kept: bad-link's ISA note, bad-note's DT_NEEDED
    assert "/usr/bin/bad-link" in {e["file"] for e in doc["proposed"]["cpu.target"]["evidence"]}
    kinds = {f.kind for f in analyse_elf("/usr/bin/bad-note", Blob.of(bad_note))}
    assert {"damaged", "needed", "glibc_need"} <= kinds


class _Zeros(io.RawIOBase):
    def __init__(self, head, size):
        self.head, self.left = head, size

    def readable(self):
        return True

    def readinto(self, b):
        n = min(len(b), self.left)
        if n <= 0:
            return 0
        chunk = self.head[:n] if self.head else bytes(n)
        b[:len(chunk)] = chunk
        self.head = self.head[len(chunk):]
        self.left -= len(chunk)
        return len(chunk)


def _layout_with_big_member(out, path, head, size, small):
    """A layout with one gzip layer holding ``path`` (``head`` then zeros to ``size`` bytes)
    and the ``small`` files, written streaming (never ``size`` bytes in memory here)."""
    os.makedirs(os.path.join(out, "blobs", "sha256"))
    json.dump({"imageLayoutVersion": "1.0.0"}, open(os.path.join(out, "oci-layout"), "w"))
    tmp = os.path.join(out, "layer.tmp")
    with open(tmp, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=1, mtime=0) as gz, \
            tarfile.open(fileobj=gz, mode="w|") as tar:
        info = tarfile.TarInfo(path)
        info.size, info.mode = size, 0o755
        tar.addfile(info, io.BufferedReader(_Zeros(head, size), 1 << 20))
        for name, data in small.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
    h = hashlib.sha256()
    with open(tmp, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    layer = "sha256:" + h.hexdigest()
    lsize = os.path.getsize(tmp)
    os.rename(tmp, os.path.join(out, "blobs", "sha256", layer[7:]))

    def blob(data):
        open(os.path.join(out, "blobs", "sha256", sha(data)[7:]), "wb").write(data)
        return sha(data)

    cfg = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                      "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(cfg),
                                 "size": len(cfg)},
                      "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer,
                                  "size": lsize}]}).encode()
    json.dump({"schemaVersion": 2, "manifests": [
        {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(man), "size": len(man),
         "annotations": {"org.opencontainers.image.ref.name": "x"}}]}, open(os.path.join(out, "index.json"), "w"))
    return lsize


@need_gcc
def test_a_1000_mib_sparse_elf_is_read_with_bounded_memory(tmp_path):
    v2 = tiny_program(tmp_path, "-march=x86-64-v2")
    # a real ELF (its own section table inside the first KB) followed by 1000 MiB of zeros:
    # about 1 MB compressed; read whole it took 2 GB
    head = B.with_fatbin([(2, 90, (1, 8), 0x11, b"\0" * 8)])
    out = str(tmp_path / "l")
    lsize = _layout_with_big_member(out, "opt/huge/libhuge.so", head, 1000 << 20, {"usr/bin/app": v2})
    assert lsize < 8 << 20
    doc = infer_hostile(wrap_index(out, "x"))            # under run_hostile's 2 GB address-space limit
    assert doc["proposed"]["cpu.target"]["value"] == "x86_64_v2"
    assert doc["proposed"]["gpu.cuda.arch"]["value"] == "sm_90"              # the huge file was read
    assert doc["proposed"]["gpu.cuda.arch"]["evidence"][0]["file"] == "/opt/huge/libhuge.so"


def _whiteout_layers(n):
    """n tiny ELF files, then n whiteouts of them (the 20,000/20,000 case was 32 s)."""
    tiny = B.elf([])
    files = {f"opt/d{i % 50}/f{i}": tiny for i in range(n)}
    gone = {f"opt/d{i % 50}/f{i}": None for i in range(0, n, 2)}
    return [files, gone]


def _scan_seconds(tmp_path, n):
    out = str(tmp_path / f"w{n}")
    digest = image(out, "x", _whiteout_layers(n))
    man = json.load(open(os.path.join(out, "blobs", "sha256", digest[7:])))
    source = Source(parse_ref(f"oci:{out}"))
    best = None
    for _ in range(2):
        t = time.perf_counter()
        files = scan(source, man)
        best = min(best or 1e9, time.perf_counter() - t)
    assert len(files) == n - len(range(0, n, 2))
    return best


def test_whiteouts_cost_linear_time(tmp_path):
    small, large = 1500, 6000          # measured: linear 4.0x, the old flat scan 18x
    ratio = _scan_seconds(tmp_path, large) / _scan_seconds(tmp_path, small)
    # 4x the entries: linear is about 4x; the quadratic scan was 16x
    assert ratio < 8, ratio


def test_whiteouts_and_opaque_directories_apply_to_the_tree():
    from compat.infer.tree import Tree
    t = Tree()
    for p in ("a/b/c", "a/b/d", "a/e", "x/y"):
        t.set(p, p)
    t.remove("a/b")
    assert dict(t.items()) == {"a/e": "a/e", "x/y": "x/y"}
    t.set("a/b/z", 1)
    t.clear_below("a")
    assert dict(t.items()) == {"x/y": "x/y"}
    t.remove("nothing/here")
    t.discard("x/y")
    assert dict(t.items()) == {}


def _layout_with_manifest(tmp_path, mutate):
    out = str(tmp_path / "l")
    digest = image(out, "x", [{"usr/bin/app": open(shutil.which("true"), "rb").read()}])
    man = json.load(open(os.path.join(out, "blobs", "sha256", digest[7:])))
    mutate(man)
    data = json.dumps(man).encode()
    open(os.path.join(out, "blobs", "sha256", sha(data)[7:]), "wb").write(data)
    top = json.load(open(os.path.join(out, "index.json")))
    top["manifests"][0].update(digest=sha(data), size=len(data))
    json.dump(top, open(os.path.join(out, "index.json"), "w"))
    return wrap_index(out, "x")


@pytest.mark.parametrize("where,mutate", [
    ("layer 0", lambda m: m["layers"][0].update(digest="sha256:../../../../etc/passwd")),
    ("layer 0", lambda m: m["layers"][0].update(digest="md5:0123")),
    ("config", lambda m: m["config"].update(digest="sha256:" + "A" * 64)),
])
def test_every_manifest_digest_is_checked_before_use(tmp_path, where, mutate):
    proc = run_hostile("annotate", _layout_with_manifest(tmp_path, mutate), "--infer")
    assert proc.returncode == 2
    assert f"image manifest: {where}: malformed digest" in proc.stderr


def test_layer_size_that_is_not_a_number_is_bad_input(tmp_path):
    proc = run_hostile("annotate", _layout_with_manifest(tmp_path, lambda m: m["layers"][0].update(size="big")),
                       "--infer")
    assert proc.returncode == 2 and "is not a byte count" in proc.stderr


@need_gcc
@pytest.mark.skipif(DISTRIBUTION is None, reason="Debian's docker-registry is not installed")
def test_registry_layers_over_64_mib_stream_with_bounded_memory(tmp_path):
    """A registry layer larger than a whole-blob read (BLOB_BYTES) streams from the real
    distribution, verified as it is read, under the 2 GB hostile-input limit."""
    v3 = tiny_program(tmp_path, "-march=x86-64-v3")
    out = str(tmp_path / "l")
    noise = os.urandom(limits.BLOB_BYTES + (1 << 20))          # incompressible: the blob stays large
    image(out, "x", [{"usr/bin/app": v3, "usr/share/data.bin": noise}])
    ref = wrap_index(out, "x")
    top = json.load(open(os.path.join(out, "index.json")))
    top["manifests"].reverse()                       # push_layout pushes the first entry: the index
    json.dump(top, open(os.path.join(out, "index.json"), "w"))
    layer = max(os.listdir(os.path.join(out, "blobs", "sha256")),
                key=lambda h: os.path.getsize(os.path.join(out, "blobs", "sha256", h)))
    assert os.path.getsize(os.path.join(out, "blobs", "sha256", layer)) > limits.BLOB_BYTES
    reg = RunningRegistry(tmp_path / "reg")
    try:
        push_layout(ref[len("oci:"):].rsplit(":", 1)[0], reg.host, "infer/big", "x-index")
        proc = run_hostile("annotate", f"{reg.host}/infer/big:x-index", "--infer", "--json")
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)[0]["proposed"]["cpu.target"]["value"] == "x86_64_v3"
        # the same blob, altered in the registry's storage: refused while streaming
        with open(reg.blob_path("sha256:" + layer), "r+b") as fh:
            fh.seek(-1, os.SEEK_END)
            last = fh.read(1)
            fh.seek(-1, os.SEEK_END)
            fh.write(bytes([last[0] ^ 1]))
        proc = run_hostile("annotate", f"{reg.host}/infer/big:x-index", "--infer", "--json")
        assert proc.returncode == 2 and "does not match its digest" in proc.stderr
    finally:
        reg.stop()


# -- the parsers never raise -------------------------------------------------------------

_BASE_ELF = B.elf([(".dynstr", B.SHT_STRTAB, b"\0libmpi.so.40\0libc.so.6\0", 0),
                   (".dynamic", B.SHT_DYNAMIC, struct.pack("<qQqQqQ", 1, 1, 1, 14, 0, 0), 1),
                   (".note.gnu.property", B.SHT_NOTE,
                    struct.pack("<III", 4, 16, 5) + b"GNU\0" + struct.pack("<IIII", 0xC0008002, 4, 4, 0), 0),
                   (".comment", B.SHT_PROGBITS, b"GCC: -march=znver3\0", 0),
                   (".nv_fatbin", B.SHT_PROGBITS, B.fatbin([(2, 90, (1, 8), 0x100011, B.elf([])),
                                                            (1, 90, (9, 0), 0x8011, b".version 9.0")]), 0)])


def test_the_hypothesis_base_file_reads_whole():
    found = {}
    for f in analyse_elf("/lib/libx.so", Blob.of(_BASE_ELF)):
        found.setdefault(f.kind, []).append(f.value)
    assert found["needed"] == ["libmpi.so.40", "libc.so.6"] and found["isa_level"] == [3]
    assert found["march"] == ["znver3"] and [e.arch for e in found["fatbin"]] == ["sm_90a", "compute_90"]
    assert "damaged" not in found


@settings(max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.integers(0, len(_BASE_ELF) - 1), st.integers(0, 255)), max_size=12),
       st.integers(0, len(_BASE_ELF)))
def test_elf_reader_gives_findings_or_damage_never_an_exception(edits, cut):
    data = bytearray(_BASE_ELF)
    for pos, value in edits:
        data[pos] = value
    found = analyse_elf("/lib/libx.so", Blob.of(bytes(data[:max(cut, 4)])))
    assert all(isinstance(f, Finding) for f in found)
    for f in found:
        if f.kind == "damaged":
            assert isinstance(f.value, str) and f.value


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.binary(max_size=600), st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=10))
def test_fatbin_parser_gives_entries_never_an_exception(noise, edits):
    data = bytearray(B.fatbin([(2, 100, (1, 8), 0x200011, b"\x7fELF" + bytes(60)),
                               (1, 120, (9, 4), 0x8011, b".version 9.4")]) + noise)
    for pos, value in edits:
        if pos < len(data):
            data[pos] = value
    for e in F.entries(bytes(data)):
        assert isinstance(e, F.Entry) and e.arch.split("_")[0] in ("sm", "compute")


def test_names_from_the_image_are_printed_escaped(tmp_path):
    # a tar member name carrying terminal escape sequences, on a file whose evidence is shown
    note = struct.pack("<III", 4, 16, 5) + b"GNU\0" + struct.pack("<IIII", 0xC0008002, 4, 4, 0)
    lib = B.elf([(".note.gnu.property", B.SHT_NOTE, note, 0)], etype=2)
    out = str(tmp_path / "l")
    image(out, "x", [{"usr/bin/\x1b]0;owned\x07app": lib,
                      "usr/lib/pkgconfig/ompi.pc": b"Version: 4.1.6\x1b[31m\n"}])
    proc = run_hostile("annotate", wrap_index(out, "x"), "--infer")
    assert proc.returncode == 0, proc.stderr
    assert "\x1b" not in proc.stdout and "\x07" not in proc.stdout
    assert "\\x1b]0;owned\\x07app" in proc.stdout
