"""A sysroot is hostile input: FIFOs, devices, huge and corrupt files, gzip bombs and
symlinks that point out of it are read as unknown (or as the capture's own file), never
followed out of the sysroot, never a hang, never an internal error."""
import gzip
import os
import shutil

import pytest

import compat
from compat import limits
from compat.host.root import Root
from conftest import HOSTS
from helpers import run_hostile


@pytest.fixture
def sysroot(tmp_path):
    root = tmp_path / "root"
    shutil.copytree(os.path.join(HOSTS, "ib-hdr-zen4"), root, symlinks=True)
    return root


def _replace(path, make):
    if path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    make(path)


@pytest.mark.parametrize("rel,fact", [
    ("proc/cpuinfo", "cpu"),
    ("proc/sys/kernel/osrelease", "os.kernel"),
    ("etc/os-release", "os.distro"),
])
def test_fifo_in_sysroot_is_unknown_not_a_hang(sysroot, rel, fact):
    _replace(sysroot / rel, os.mkfifo)
    proc = run_hostile("detect", "--json", "--sysroot", str(sysroot), "--assume", "os.arch=amd64")
    assert proc.returncode == 0
    assert '"kernel": null' in proc.stdout if fact == "os.kernel" else True
    assert '"distro": null' in proc.stdout if fact == "os.distro" else True


@pytest.mark.parametrize("target", ["/dev/zero", "/etc/shadow", "/proc/self/environ",
                                    "../../../../../../../../etc/passwd"])
def test_symlink_out_of_the_sysroot_stays_inside(sysroot, target):
    _replace(sysroot / "etc/os-release", lambda p: os.symlink(target, p))
    root = Root(str(sysroot))
    assert root.read("/etc/os-release") is None          # the capture has no such file
    inside = sysroot / target.lstrip("./")
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_text('ID=inside\n')
    assert root.read("/etc/os-release") == "ID=inside"   # the capture's own file of that name
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    assert h.os.distro == "inside"


def test_symlinked_directory_resolves_inside(sysroot):
    """sysfs is symlinks all the way down: a relative link between directories of the capture
    works, an absolute one is re-rooted at the sysroot."""
    (sysroot / "real").mkdir()
    (sysroot / "real/f").write_text("x\n")
    os.symlink("/real", sysroot / "abs")
    os.symlink("../real", sysroot / "etc/rel")
    root = Root(str(sysroot))
    assert root.read("/abs/f") == "x" and root.read("/etc/rel/f") == "x"
    assert root.read("/etc/rel/../../../../real/f") == "x"


def test_symlink_loop_is_unknown(sysroot):
    os.symlink("b", sysroot / "a")
    os.symlink("a", sysroot / "b")
    assert Root(str(sysroot)).read("/a") is None
    assert Root(str(sysroot)).exists("/a")


def test_file_over_the_bound_is_not_read(sysroot):
    big = sysroot / "proc/cpuinfo"
    with open(big, "r+b") as fh:
        fh.truncate(limits.SYSROOT_FILE_BYTES + 1)        # sparse: nothing to allocate
    assert Root(str(sysroot)).read("/proc/cpuinfo") is None


def test_glibc_probe_skips_a_fifo_libc(sysroot):
    for d in ("lib/x86_64-linux-gnu", "lib64"):
        _replace(sysroot / d / "libc.so.6", os.mkfifo)
    proc = run_hostile("detect", "--json", "--sysroot", str(sysroot), "--assume", "os.arch=amd64")
    assert '"glibc": null' in proc.stdout


# -- /proc/config.gz ----------------------------------------------------------------------------

def test_config_gz_is_read(sysroot):
    (sysroot / "proc/config.gz").write_bytes(gzip.compress(b"CONFIG_NUMA=y\n"))
    assert Root(str(sysroot)).read_gzip("/proc/config.gz") == "CONFIG_NUMA=y\n"


@pytest.mark.parametrize("make", [
    lambda p: p.write_bytes(b"\x1f\x8b\x08\x00 this is not deflate data"),
    lambda p: p.write_bytes(gzip.compress(b"CONFIG_X=y\n")[:-12]),    # truncated
    os.mkfifo,
    lambda p: os.symlink("/dev/zero", p),
])
def test_config_gz_that_is_not_a_gzip_file_is_unknown(sysroot, make):
    _replace(sysroot / "proc/config.gz", make)
    assert Root(str(sysroot)).read_gzip("/proc/config.gz") is None


def test_config_gz_bomb_stops_at_the_bound(sysroot):
    bomb = sysroot / "proc/config.gz"
    with gzip.open(bomb, "wb", compresslevel=9) as fh:
        chunk = b"\0" * (1 << 20)
        for _ in range(4):
            fh.write(chunk)
    root = Root(str(sysroot))
    assert root.read_gzip("/proc/config.gz", limit=1 << 20) is None
    assert len(root.read_gzip("/proc/config.gz", limit=8 << 20)) == 4 << 20


def test_config_gz_hostile_through_nfd_features(sysroot):
    """The NFD feature view reads the kernel config through Root.read_gzip."""
    from compat.nfd.features import from_host
    _replace(sysroot / "proc/config.gz", lambda p: p.write_bytes(b"\x1f\x8b garbage"))
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    from_host(h, Root(str(sysroot)))        # no exception


# -- unknown, never a confident absence -----------------------------------------------------

def test_unlistable_infiniband_is_unknown_not_tcp_only(sysroot, monkeypatch):
    real = os.listdir

    def listdir(path):
        if str(path).endswith("/sys/class/infiniband"):
            raise PermissionError(13, "Permission denied", path)
        return real(path)
    monkeypatch.setattr(os, "listdir", listdir)
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    assert h.fabrics is None
    assert h.sources["fabrics"].startswith("unknown: cannot list")


def test_infiniband_that_is_not_a_directory_is_unknown(sysroot):
    shutil.rmtree(sysroot / "sys/class/infiniband")
    (sysroot / "sys/class/infiniband").write_text("")
    proc = run_hostile("detect", "--sysroot", str(sysroot), "--assume", "os.arch=amd64")
    assert "fabric     unknown" in proc.stdout and "tcp only" not in proc.stdout


def test_absent_infiniband_is_tcp_only(sysroot):
    shutil.rmtree(sysroot / "sys/class/infiniband")
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    assert h.fabrics == ()


def test_sysroot_without_sys_is_fabric_unknown(sysroot):
    shutil.rmtree(sysroot / "sys")
    h = compat.detect(sysroot=str(sysroot), assume={"os.arch": "amd64"})
    assert h.fabrics is None


def test_unlistable_slurm_plugins_make_pmi_unknown(sysroot, monkeypatch):
    from compat.host import mpi
    from compat.host.cache import ProbeCache
    plugins = sysroot / "usr/lib64/slurm"
    shutil.rmtree(plugins, ignore_errors=True)
    plugins.parent.mkdir(parents=True, exist_ok=True)
    plugins.write_text("")                                 # not a directory
    sources = {}
    assert mpi.probe_pmi(Root(str(sysroot)), sources, ProbeCache(enabled=False)) is None
    assert sources["pmi"].startswith("unknown: cannot list")


def test_escape_sequences_in_a_sysroot_are_not_printed(sysroot):
    (sysroot / "etc/os-release").write_text('ID=x\nPRETTY_NAME="\x1b]0;pwned\x07\x1b[2J"\n')
    proc = run_hostile("detect", "--sysroot", str(sysroot), "--assume", "os.arch=amd64")
    assert "\x1b" not in proc.stdout and "\\x1b]0;pwned" in proc.stdout
    saved = run_hostile("detect", "--json", "--sysroot", str(sysroot), "--assume", "os.arch=amd64").stdout
    from compat.schema import first_error
    import json
    assert first_error(json.loads(saved), "host") is None
