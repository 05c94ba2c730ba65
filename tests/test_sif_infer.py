"""``annotate --infer`` on SIF variants (compat/infer/sif.py): binaries compiled here by gcc,
put in a squashfs by mksquashfs, in a SIF written by tests/sif_build.py; read back with
unsquashfs and the ELF readers; hostile squashfs contents (symbolic links out, devices, odd
names) never followed or created."""
import json
import os
import shutil
import subprocess

import pytest

from conftest import run_compat
from compat import limits
from compat.errors import BadInput
from compat.infer import sif as S

import sif_build

GCC = shutil.which("gcc")
pytestmark = [sif_build.needs_squashfs, pytest.mark.skipif(GCC is None, reason="no gcc")]
C_SRC = "int main(void){return 0;}\n"


@pytest.fixture(scope="module")
def binaries(tmp_path_factory):
    d = tmp_path_factory.mktemp("sifbin")
    (d / "p.c").write_text(C_SRC)
    out = {}
    for level in ("v2", "v3"):
        subprocess.run([GCC, "-O2", f"-march=x86-64-{level}", "-mneeded", "-o", f"app-{level}", "p.c"],
                       cwd=d, check=True, capture_output=True, timeout=300)
        out[level] = (d / f"app-{level}").read_bytes()
    return out


def _sif(tmp_path, files, name="app.sif", **kw):
    tree = sif_build.app_tree(str(tmp_path / (name + ".root")), files)
    return sif_build.write_sif(str(tmp_path / name), tree, "amd64", **kw)


def _infer(*args):
    return json.loads(run_compat("annotate", *args, "--infer", "--json", check=0).stdout)


def test_infer_reads_the_binaries_of_a_sif_file(binaries, tmp_path):
    path = _sif(tmp_path, {"usr/bin/app": binaries["v3"], "usr/share/doc/README": b"text\n"})
    (doc,) = _infer(f"oci:{tmp_path}/o:1", "--variant", path)
    assert doc["proposed"]["cpu.target"]["value"] == "x86_64_v3"
    ev = doc["proposed"]["cpu.target"]["evidence"][0]
    assert ev["file"] == "/usr/bin/app" and "GNU_PROPERTY_X86_ISA_1_NEEDED" in ev["section"]
    # --path narrows what is extracted: the v3 binary outside it is not read
    path2 = _sif(tmp_path, {"usr/bin/app": binaries["v3"], "opt/tool/app": binaries["v2"]}, "two.sif")
    (scoped,) = _infer(f"oci:{tmp_path}/o:1", "--variant", path2, "--path", "/opt")
    assert scoped["proposed"]["cpu.target"]["value"] == "x86_64_v2"
    assert [e["file"] for e in scoped["proposed"]["cpu.target"]["evidence"]] == ["/opt/tool/app"]


def test_infer_write_puts_the_keys_on_the_sif_entry(binaries, tmp_path):
    path = _sif(tmp_path, {"usr/bin/app": binaries["v3"]})
    out = f"oci:{tmp_path}/w:1"
    run_compat("annotate", out, "--variant", path, "--infer", "--write", check=0)
    with open(tmp_path / "w" / "index.json") as fh:
        top = json.load(fh)
    with open(tmp_path / "w" / "blobs" / "sha256" / top["manifests"][-1]["digest"][7:]) as fh:
        (entry,) = json.load(fh)["manifests"]
    assert entry["annotations"]["org.hpc-compat.cpu.target"] == "x86_64_v3"
    # the pushed artifact read back (an existing index's SIF child): the same proposal
    (again,) = _infer(out)
    assert again["proposed"]["cpu.target"]["value"] == "x86_64_v3"


def test_links_devices_and_odd_names_are_never_followed_or_created(binaries, tmp_path):
    tree = tmp_path / "hostile"
    tree.mkdir()
    (tree / "usr").mkdir()
    os.symlink(os.path.realpath(GCC), tree / "usr" / "gcc-outside")     # an ELF outside the image
    (tree / " spaced").write_bytes(binaries["v3"])
    (tree / "usr" / "real").write_bytes(binaries["v2"])
    pseudo = tmp_path / "pseudo"
    pseudo.write_text("dev d 755 0 0\ndev/disk b 600 0 0 8 0\n")       # a block device, as a pseudo file
    image = tmp_path / "h.squashfs"
    subprocess.run(["mksquashfs", str(tree), str(image), "-noappend", "-quiet", "-no-progress", "-all-root",
                    "-pf", str(pseudo)], check=True, stdout=subprocess.DEVNULL)
    listing = subprocess.run(["unsquashfs", "-lls", "-n", str(image)], capture_output=True, check=True).stdout
    assert b"brw" in listing and b"gcc-outside -> " in listing       # the hostile parts are there
    data = sif_build.sif([(image.read_bytes(), "squashfs", "primary", "amd64")])
    path = tmp_path / "h.sif"
    path.write_bytes(data)
    files = S.scan_squashfs(str(path), data.index(b"hsqs"))
    assert sorted(files) == [" spaced", "usr/real"]
    assert files[" spaced"][0].kind == "skipped"
    result = S.infer_sif(str(path))
    assert [p.value for p in result["proposals"] if p.key == "cpu.target"] == ["x86_64_v2"]


def test_bounds_are_checked_before_extracting(binaries, tmp_path, monkeypatch):
    path = _sif(tmp_path, {"usr/bin/app": binaries["v3"], "a": b"1", "b": b"2"})
    offset = open(path, "rb").read().index(b"hsqs")
    monkeypatch.setattr(limits, "SIF_SQUASHFS_FILES", 3)
    with pytest.raises(BadInput, match="inodes .at most limits.SIF_SQUASHFS_FILES"):
        S.scan_squashfs(path, offset)
    monkeypatch.setattr(limits, "SIF_SQUASHFS_FILES", 100)
    monkeypatch.setattr(limits, "SIF_SQUASHFS_BYTES", 1000)
    with pytest.raises(BadInput, match="narrow it with --path"):
        S.scan_squashfs(path, offset)
    assert S.scan_squashfs(path, offset, scopes=["/a"]) == {}      # in scope: 1 byte, no ELF


def test_a_sif_whose_partition_is_not_squashfs_or_not_one(tmp_path):
    ext3 = tmp_path / "e.sif"
    ext3.write_bytes(sif_build.sif([(b"\0" * 4096, "ext3", "primary", "amd64")]))
    with pytest.raises(BadInput, match="squashfs primary partition; this SIF has ext3"):
        S.infer_sif(str(ext3))
    junk = tmp_path / "j.sif"
    junk.write_bytes(sif_build.sif([(b"not squashfs" * 100, "squashfs", "primary", "amd64")]))
    with pytest.raises(BadInput, match="unsquashfs: "):
        S.infer_sif(str(junk))
    proc = run_compat("annotate", f"oci:{tmp_path}/o:1", "--variant", str(junk), "--infer")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1 and "unsquashfs" in proc.stderr


def test_listing_parser():
    listing = (b"drwxr-xr-x root/root 62 2026-11-23 06:35 squashfs-root\n"
               b"-rw-r--r-- root/root 2 2026-11-23 06:35 squashfs-root/a b*c\n"
               b"lrwxrwxrwx root/root 11 2026-11-23 06:35 squashfs-root/link -> /etc/passwd\n"
               b"brw-r--r-- root/root 8,  0 2026-11-23 06:35 squashfs-root/dev/sda\n"
               b"-rwxr-xr-x root/root 35664 2026-11-23 06:35 squashfs-root/usr/bin/true\n"
               b"-rw-r--r-- root/root 5 2026-11-23 06:35 squashfs-root/odd\\name\n"
               b"-rw-r--r-- root/root x 2026-11-23 06:35 squashfs-root/garbled\n")
    assert S.regular_files(listing) == ([("a b*c", 2), ("usr/bin/true", 35664)], ["odd\\name"])
    assert S.regular_files(listing, ["/usr"]) == ([("usr/bin/true", 35664)], [])
