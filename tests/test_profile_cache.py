"""The whole-profile cache (compat/host/profile_cache.py, observe.py): a warm detect returns the
stored profile without probing, and every key that decides the profile, changed, makes the
next detect probe again. "Probed" is counted at compat.host.detection.probe, the cold path.

Live detections run with a fake PATH of shell scripts (mpirun, srun, apptainer); sysroot
detections on copies of fixtures/hosts captures, edited between runs."""
import json
import os
import shutil
import stat
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import compat
import compat.host
from compat.host import detection, observe, profile_cache
from compat.host.observe import RecordingRoot, unchanged
from compat.host.root import Root
from conftest import HOSTS, REPO
from helpers import run_hostile

MPIRUN = '#!/bin/sh\necho "mpirun (Open MPI) {v}"\n'
SRUN = '#!/bin/sh\necho "MPI plugin types are..."\necho "        {p}"\n'
APPTAINER = '#!/bin/sh\necho "apptainer version 1.3.{v}"\n'


@pytest.fixture
def probes(monkeypatch):
    """Counts cold detections (calls of the probing code behind the cache)."""
    calls = []
    real = detection.probe

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)
    monkeypatch.setattr(detection, "probe", counted)
    return calls


@pytest.fixture
def settled(monkeypatch):
    """Files written by the test count as settled at once (no "racily changed" content keys),
    so that the identity keys (inode, size, mtime, ctime, mode) are what is tested."""
    monkeypatch.setattr(observe, "RACY_NS", 0)


def _script(path, text, mode=0o755):
    """Install ``text`` at ``path`` as package managers do: a new file renamed into place."""
    tmp = f"{path}.new"
    with open(tmp, "w") as fh:
        fh.write(text)
    os.chmod(tmp, mode)
    os.replace(tmp, path)


@pytest.fixture
def fakebin(tmp_path):
    d = tmp_path / "bin"
    d.mkdir()
    _script(d / "mpirun", MPIRUN.format(v="4.1.5"))
    return d


def _live(path, **extra):
    return {"PATH": str(path), **extra}


def _capture(tmp_path, name="ib-hdr-zen4"):
    dst = tmp_path / name
    shutil.copytree(os.path.join(HOSTS, name), dst, symlinks=True)
    return dst


def _write(path, text):
    """Rewrite in place (same inode), as an editor or a sysfs attribute changes."""
    with open(path, "w") as fh:
        fh.write(text)


# -- hits ---------------------------------------------------------------------------------------

def test_unchanged_live_host_is_probed_once(probes, fakebin):
    first = compat.host.detect(env=_live(fakebin))
    again = compat.host.detect(env=_live(fakebin))
    assert len(probes) == 1
    assert again == first and again.mpi[0].version == "4.1.5"


def test_unchanged_sysroot_is_probed_once(probes, tmp_path):
    root = _capture(tmp_path)
    first = compat.host.detect(sysroot=str(root))
    assert compat.host.detect(sysroot=str(root)) == first
    assert len(probes) == 1 and first.fabrics[0].type == "infiniband"


def test_this_machine_hits_too(probes):
    """The real environment and the real procfs/sysfs: what a warm ``compat detect`` sees. A
    pseudo-file whose content changes by itself between two runs would make every run a miss."""
    compat.host.detect()
    compat.host.detect()
    assert len(probes) == 1


def test_assume_is_applied_after_the_cache(probes, fakebin):
    compat.host.detect(env=_live(fakebin))
    host = compat.host.detect(env=_live(fakebin), assume=["gpu.cc=9.0"])
    assert len(probes) == 1 and host.gpus[0].cc == "9.0"
    compat.host.detect(env=_live(fakebin), assume=["os.arch=arm64"])     # steers probing: a key
    assert len(probes) == 2


def test_no_cache_probes_every_time_and_writes_nothing(probes, fakebin, monkeypatch, tmp_path):
    monkeypatch.setenv("COMPAT_NO_CACHE", "1")
    compat.host.detect(env=_live(fakebin))
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2
    assert not os.path.exists(profile_cache.ProfileCache().path)


# -- each key, changed, is a miss -----------------------------------------------------------------

def test_boot_id_of_a_sysroot(probes, tmp_path):
    root = _capture(tmp_path)
    boot = root / "proc/sys/kernel/random/boot_id"
    boot.parent.mkdir(parents=True)
    boot.write_text("1b9f1c2e-0d6a-4a8e-9c55-6f1b2b4f1a01\n")
    compat.host.detect(sysroot=str(root))
    compat.host.detect(sysroot=str(root))
    boot.write_text("77c1d0a4-5c1e-4b55-8b0e-2a4f9e5c0b02\n")
    compat.host.detect(sysroot=str(root))
    assert len(probes) == 2


def test_reboot_of_this_machine(probes, fakebin, monkeypatch, tmp_path):
    """Live, cpuinfo and the kernel release are not read again on a warm run: the boot id
    stands for them. Another boot id (here a file standing in for procfs's) is a miss."""
    boot = tmp_path / "boot_id"
    boot.write_text("1b9f1c2e-0d6a-4a8e-9c55-6f1b2b4f1a01\n")
    monkeypatch.setattr(observe, "BOOT_ID", str(boot))
    compat.host.detect(env=_live(fakebin))
    entry = profile_cache.ProfileCache().entries()[0]
    assert ["read", "/proc/cpuinfo", 8 << 20, "boot"] in entry["observed"]
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 1
    _write(boot, "77c1d0a4-5c1e-4b55-8b0e-2a4f9e5c0b02\n")
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2


def test_a_probed_files_content(probes, tmp_path):
    root = _capture(tmp_path)
    assert compat.host.detect(sysroot=str(root)).os.distro == "rocky"
    text = (root / "etc/os-release").read_text()
    _write(root / "etc/os-release", text.replace("ID=rocky", "ID=almalinux"))
    assert compat.host.detect(sysroot=str(root)).os.distro == "almalinux"
    assert len(probes) == 2


def test_a_probed_files_mtime(probes, settled, tmp_path):
    root = _capture(tmp_path)
    compat.host.detect(sysroot=str(root))
    compat.host.detect(sysroot=str(root))
    st = os.stat(root / "etc/os-release")
    os.utime(root / "etc/os-release", ns=(st.st_atime_ns, st.st_mtime_ns - 10**9))   # content unchanged
    compat.host.detect(sysroot=str(root))
    assert len(probes) == 2


def test_sysfs_state_is_keyed_by_content(probes, settled, tmp_path):
    """A port going down changes no useful timestamp on the real sysfs: its content is the key
    (touching it without a change is no miss; changing it is)."""
    root = _capture(tmp_path)
    state = root / "sys/class/infiniband/mlx5_0/ports/1/state"
    assert compat.host.detect(sysroot=str(root)).fabrics[0].state == "ACTIVE"
    os.utime(state, ns=(0, 0))
    compat.host.detect(sysroot=str(root))
    assert len(probes) == 1
    _write(state, "1: DOWN\n")
    assert compat.host.detect(sysroot=str(root)).fabrics[0].state == "DOWN"
    assert len(probes) == 2


def test_a_new_device_in_a_listed_directory(probes, tmp_path):
    root = _capture(tmp_path)
    compat.host.detect(sysroot=str(root))
    shutil.copytree(root / "sys/class/infiniband/mlx5_0", root / "sys/class/infiniband/mlx5_1", symlinks=True)
    assert len(compat.host.detect(sysroot=str(root)).fabrics) == 2
    assert len(probes) == 2


def test_a_binary_replaced_on_path(probes, fakebin):
    compat.host.detect(env=_live(fakebin))
    _script(fakebin / "mpirun", MPIRUN.format(v="4.1.6"))
    assert compat.host.detect(env=_live(fakebin)).mpi[0].version == "4.1.6"
    assert len(probes) == 2


def test_a_binary_rewritten_in_place(probes, settled, fakebin):
    compat.host.detect(env=_live(fakebin))
    _write(fakebin / "mpirun", MPIRUN.format(v="4.1.7"))        # same inode, same size
    assert compat.host.detect(env=_live(fakebin)).mpi[0].version == "4.1.7"
    assert len(probes) == 2


def test_a_new_executable_earlier_on_path(probes, fakebin, tmp_path):
    first = tmp_path / "first"
    first.mkdir()
    path = f"{first}:{fakebin}"
    assert compat.host.detect(env=_live(path)).mpi[0].version == "4.1.5"
    _script(first / "mpirun", MPIRUN.format(v="5.0.3"))
    assert compat.host.detect(env=_live(path)).mpi[0].version == "5.0.3"
    assert len(probes) == 2


def test_a_new_runtime_on_path(probes, fakebin):
    assert compat.host.detect(env=_live(fakebin)).runtimes == ()
    _script(fakebin / "apptainer", APPTAINER.format(v=2))
    assert [r.name for r in compat.host.detect(env=_live(fakebin)).runtimes] == ["apptainer"]
    assert len(probes) == 2


def test_an_executable_bit(probes, fakebin):
    _script(fakebin / "srun", SRUN.format(p="pmix"), mode=0o644)
    before = compat.host.detect(env=_live(fakebin))
    os.chmod(fakebin / "srun", 0o755)
    after = compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2
    assert after.pmi == ("pmix",) and after.sources["pmi"] != before.sources["pmi"]


@pytest.mark.parametrize("name, value", [("CRAY_MPICH_VERSION", "8.1.27"), ("LD_LIBRARY_PATH", "/opt/x/lib"),
                                         ("SLURM_CONF", "/etc/slurm/other.conf"), ("PATH", None)])
def test_an_environment_variable_the_probes_read(probes, fakebin, tmp_path, name, value):
    compat.host.detect(env=_live(fakebin))
    other = tmp_path / "other"
    other.mkdir()
    compat.host.detect(env=_live(fakebin, **{name: value or f"{fakebin}:{other}"}))
    assert len(probes) == 2


def test_a_variable_no_probe_reads_is_no_key(probes, fakebin):
    compat.host.detect(env=_live(fakebin, OLDPWD="/a", SLURM_JOB_ID="17"))
    compat.host.detect(env=_live(fakebin, OLDPWD="/b", SLURM_JOB_ID="18"))
    assert len(probes) == 1


def test_archspecs_version(tmp_path):
    """A newer archspec ahead on sys.path, then edited in place: each is a miss (a child process
    each: the archspec a process would import is the key, found without importing it)."""
    import archspec
    copy = tmp_path / "site"
    shutil.copytree(os.path.dirname(archspec.__file__), copy / "archspec",
                    ignore=shutil.ignore_patterns("__pycache__"))
    cache = tmp_path / "cache"
    profile = cache / f"profile-{profile_cache._node_name()}.json"

    def detect(pythonpath):
        proc = run_hostile("detect", "--json", env={"COMPAT_CACHE_DIR": str(cache),
                                                    "PYTHONPATH": pythonpath + os.pathsep + REPO})
        assert proc.returncode == 0, proc.stderr
        return os.stat(profile).st_ino                  # a miss rewrites the file (a new inode)

    plain = detect("")
    assert detect("") == plain                          # warm: not rewritten
    ahead = detect(str(copy))
    assert ahead != plain
    init = copy / "archspec" / "__init__.py"
    _write(init, init.read_text().replace('__version__ = "', '__version__ = "9'))
    assert detect(str(copy)) != ahead


def test_compats_version(probes, fakebin, monkeypatch):
    compat.host.detect(env=_live(fakebin))
    monkeypatch.setattr(compat, "__version__", "99.0")
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2


def test_compats_probe_code(probes, fakebin, monkeypatch):
    """An edit to a probe module (a checkout, an upgrade) is a miss: the code is a key."""
    compat.host.detect(env=_live(fakebin))
    real = profile_cache.code_identity
    monkeypatch.setattr(profile_cache, "code_identity",
                        lambda name, parts: real(name, parts) + ("edited" if name == "compat" else ""))
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2


def test_the_sysroot_path(probes, tmp_path):
    a, b = _capture(tmp_path / "a"), _capture(tmp_path / "b")        # the same files
    compat.host.detect(sysroot=str(a))
    compat.host.detect(sysroot=str(b))
    assert len(probes) == 2
    compat.host.detect(sysroot=str(a))                                  # both kept
    compat.host.detect(sysroot=str(b))
    assert len(probes) == 2


def test_probe_tools(probes, fakebin):
    compat.host.detect(env=_live(fakebin))
    compat.host.detect(env=_live(fakebin), probe_tools=True)
    compat.host.detect(env=_live(fakebin), probe_tools=True)
    assert len(probes) == 2


# -- what Root records, kind by kind (the runtime probes go through the same methods) -----------

def _recorded(root, action):
    action(root)
    return root.observed


def test_stat_and_access_are_recorded(settled, tmp_path):
    f = tmp_path / "starter-suid"
    f.write_text("x")
    os.chmod(f, 0o755)
    seen = _recorded(RecordingRoot(env={}), lambda r: (r.stat(str(f)), r.access(str(f), os.W_OK)))
    assert unchanged(Root(env={}), seen)
    os.chmod(f, 0o4755)                                  # the setuid bit
    assert not unchanged(Root(env={}), seen)


def test_a_loaded_librarys_search_path_is_recorded(settled, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    env = {"LD_LIBRARY_PATH": str(lib)}
    seen = _recorded(RecordingRoot(env=env), lambda r: r.load_library("libnvidia-ml.so.1"))
    assert ["list", str(lib), None] in [o[:3] for o in seen]
    assert ["stat", "/etc/ld.so.cache", True] in [o[:3] for o in seen]
    assert unchanged(Root(env=env), seen)
    (lib / "libnvidia-ml.so.1").write_bytes(b"")
    assert not unchanged(Root(env=env), seen)


def test_racily_changed_files_are_kept_by_content(tmp_path):
    """A file changed a moment before it was looked at is keyed by its content: a second write
    in the same timestamp tick cannot go unseen, and rewriting the same bytes is no change."""
    f = tmp_path / "os-release"
    f.write_text("ID=a\n")
    seen = _recorded(RecordingRoot(str(tmp_path)), lambda r: r.read("/os-release"))
    assert seen[-1][3].startswith("c:")
    f.write_text("ID=a\n")
    assert unchanged(Root(str(tmp_path)), seen)
    f.write_text("ID=b\n")
    assert not unchanged(Root(str(tmp_path)), seen)


def test_glob_stays_inside_the_sysroot(tmp_path):
    """``/opt/*/lib`` below a sysroot: a link to ``/`` is the sysroot's top, not this machine's."""
    (tmp_path / "opt").mkdir()
    os.symlink("/", tmp_path / "opt" / "escape")
    (tmp_path / "opt" / "mpi" / "lib").mkdir(parents=True)
    assert Root(str(tmp_path)).glob("/opt/*/lib") == ["/opt/mpi/lib"]
    (tmp_path / "lib").mkdir()
    assert Root(str(tmp_path)).glob("/opt/*/lib") == ["/opt/escape/lib", "/opt/mpi/lib"]


# -- the cache file is input ----------------------------------------------------------------------

def _cache_file():
    return profile_cache.ProfileCache().path


def _filled(fakebin):
    compat.host.detect(env=_live(fakebin))
    with open(_cache_file()) as fh:
        return json.load(fh)


@pytest.mark.parametrize("make", [
    lambda p: open(p, "wb").write(b"\x00\xff not json"),
    lambda p: open(p, "w").write("[" * 100_000),
    lambda p: open(p, "w").write('{"format": 1, "entries": "x"}'),
    lambda p: (open(p, "wb").close(), os.truncate(p, 64 << 20)),         # sparse, past the bound
    os.mkfifo,
    os.mkdir,
], ids=["binary", "deep", "shape", "huge", "fifo", "dir"])
def test_an_unreadable_cache_file_is_a_miss(probes, fakebin, make):
    _filled(fakebin)
    path = _cache_file()
    os.unlink(path)
    make(path)
    assert compat.host.detect(env=_live(fakebin)).mpi[0].version == "4.1.5"
    assert len(probes) == 2


def _poisoned(entry):
    """Entries that must not be believed: each is a miss, then rewritten."""
    yield "escape in a fact", {**entry, "profile": {**entry["profile"], "os": {**entry["profile"]["os"],
                                                                              "distro": "\x1b[31mx"}}}
    yield "wrong type", {**entry, "profile": {**entry["profile"], "gpus": "none"}}
    yield "not a profile", {**entry, "profile": {"schema": "x"}}
    yield "no boot id first", {**entry, "observed": entry["observed"][1:]}
    yield "unknown kind", {**entry, "observed": entry["observed"] + [["rm", "/", None, None]]}
    yield "bad argument", {**entry, "observed": entry["observed"] + [["read", "/proc/x", "a lot", None]]}
    yield "short observation", {**entry, "observed": entry["observed"] + [["env"]]}
    yield "other format", None


@pytest.mark.parametrize("case", [name for name, _ in _poisoned({"profile": {"os": {}}, "observed": []})])
def test_a_hostile_entry_is_a_miss_and_rewritten(probes, fakebin, case):
    data = _filled(fakebin)
    bad = dict(_poisoned(data["entries"][0]))[case]
    doc = {"format": 2, "entries": data["entries"]} if bad is None else {**data, "entries": [bad]}
    with open(_cache_file(), "w") as fh:
        json.dump(doc, fh)
    host = compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2 and host.os.distro != "\x1b[31mx"
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2                                               # rewritten: a hit again


def test_hostile_cache_file_through_the_cli(tmp_path):
    """The exit-code contract with a broken cache: detect works, says nothing about it."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"profile-{profile_cache._node_name()}.json").write_text('{"format": 1, "entries": [{"args": 1}]}')
    proc = run_hostile("detect", "--json", env={"COMPAT_CACHE_DIR": str(cache)})
    assert proc.returncode == 0 and proc.stderr == "" and json.loads(proc.stdout)["schema"]


def test_the_file_is_private_bounded_and_atomic(probes, tmp_path, monkeypatch):
    monkeypatch.setattr(observe, "RACY_NS", 0)
    roots = [_capture(tmp_path / str(i)) for i in range(10)]
    for r in roots:
        compat.host.detect(sysroot=str(r))
    path = _cache_file()
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700
    assert not [n for n in os.listdir(os.path.dirname(path)) if n.endswith(".tmp")]
    kept = profile_cache.ProfileCache().entries()
    assert len(kept) == compat.limits.PROFILE_CACHE_ENTRIES
    assert kept[0]["args"]["sysroot"] == os.path.realpath(roots[-1])    # newest first
    monkeypatch.setattr(compat.limits, "PROFILE_CACHE_BYTES", 2000)     # one entry is larger
    compat.host.detect(sysroot=str(roots[0]))
    assert os.path.getsize(path) > 2000                                  # nothing written past the bound


def test_a_warm_detect_imports_no_probe_and_no_archspec(tmp_path):
    env = dict(os.environ, COMPAT_CACHE_DIR=str(tmp_path), PYTHONPATH=REPO)
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "compat", "detect", "--json"],
                              capture_output=True, text=True, env=env, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
    loaded = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "compat.host.profile_cache" in loaded                        # the test sees imports at all
    heavy = {"archspec", "archspec.cpu", "pynvml", "cpuinfo", "ctypes", "compat.host.detection",
             "compat.host.cpu", "compat.host.gpu", "compat.host.mpi", "compat.host.fabric",
             "compat.host.system", "compat.host.cache", "compat.host.assume"}
    assert sorted(heavy & loaded) == []


def test_an_unwritable_cache_directory_is_only_slower(probes, fakebin, tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    monkeypatch.setenv("COMPAT_CACHE_DIR", str(blocker / "cache"))
    assert compat.host.detect(env=_live(fakebin)).mpi[0].version == "4.1.5"
    compat.host.detect(env=_live(fakebin))
    assert len(probes) == 2


# -- the cache file's parser, property-based --------------------------------------------------------

_JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**40, 2**40) | st.text(max_size=20),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                     max_leaves=12)
_PATHS = st.sampled_from(["/proc/sys/kernel/random/boot_id", "/proc/cpuinfo", "/sys/class", "/etc/os-release",
                          "/dev/null", "/dev/zero", "/proc/self/status", "", "/", "a\x00b", "../../etc", "mpirun"])
_OBSERVATION = st.one_of(
    st.tuples(st.sampled_from(list(observe.KINDS)), _PATHS, _JSON, _JSON).map(list),
    _JSON)


@pytest.fixture(scope="module")
def real_entry(tmp_path_factory):
    root = tmp_path_factory.mktemp("capture")
    shutil.copytree(os.path.join(HOSTS, "ib-hdr-zen4"), root / "c", symlinks=True)
    cache = profile_cache.ProfileCache(path=str(root / "profile.json"))
    recording = RecordingRoot(str(root / "c"))
    host = detection.probe(recording)
    cache.store({"sysroot": "x"}, recording.observed, host)
    return str(root / "c"), cache.entries()[0]


@settings(max_examples=150, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_any_cache_content_is_a_hit_or_a_miss(real_entry, data, tmp_path_factory):
    """Observations and profiles of any shape, alone or spliced into a real entry: checking
    them answers yes or no (never raises), and what a hit returns is a valid profile."""
    sysroot, entry = real_entry
    observed = list(entry["observed"])
    at = data.draw(st.integers(0, len(observed)))
    observed[at:at + data.draw(st.integers(0, 1))] = data.draw(st.lists(_OBSERVATION, max_size=3))
    profile = data.draw(st.one_of(st.just(entry["profile"]), _JSON,
                                  st.builds(lambda k, v: {**entry["profile"], k: v},
                                            st.sampled_from(sorted(entry["profile"])), _JSON)))
    doc = data.draw(st.one_of(st.just({"format": 1, "entries": [{"args": {"sysroot": "x"}, "observed": observed,
                                                                   "profile": profile}]}), _JSON))
    path = tmp_path_factory.mktemp("file") / "profile.json"
    path.write_text(json.dumps(doc))
    host = profile_cache.ProfileCache(path=str(path)).lookup({"sysroot": "x"}, Root(sysroot))
    assert host is None or isinstance(host, compat.host.Host)
    if host is not None:
        assert compat.schema.validate_host(host.to_dict()) is None


def test_the_real_entry_alone_is_a_hit(real_entry, tmp_path):
    """The property above can answer both ways: its unspliced entry is a hit."""
    sysroot, entry = real_entry
    path = tmp_path / "profile.json"
    path.write_text(json.dumps({"format": 1, "entries": [{**entry, "args": {"sysroot": "x"}}]}))
    host = profile_cache.ProfileCache(path=str(path)).lookup({"sysroot": "x"}, Root(sysroot))
    assert host is not None and host.fabrics[0].type == "infiniband"


def test_every_way_root_reads_is_recorded():
    """A Root method added later that reads the machine without RecordingRoot noting it would
    make the cache serve stale profiles: each public method is either recorded or built only
    on recorded ones (this list says which)."""
    built_on_others = {"path", "confined", "live", "read", "read_gzip", "listdir", "glob"}
    public = {n for n in vars(Root) if not n.startswith("_")}
    recorded = {n for n in vars(RecordingRoot) if not n.startswith("_")} - {"observed"}
    assert public - built_on_others == recorded, "record the new Root method in RecordingRoot"


def test_nvml_answers_are_keyed_by_the_driver_and_the_cgroup(tmp_path):
    """With NVML loaded (the stand-in of test_nvml.py), the driver's files and this process's
    cgroup (which limits the GPUs NVML may open) are keys, and a second run is still a hit."""
    from test_nvml import STUB
    cc = shutil.which("gcc") or shutil.which("cc")
    if not cc:
        pytest.skip("no C compiler to build the NVML stand-in")
    lib = tmp_path / "lib"
    lib.mkdir()
    (tmp_path / "nvml.c").write_text(STUB)
    subprocess.run([cc, "-shared", "-fPIC", "-o", str(lib / "libnvidia-ml.so.1"), str(tmp_path / "nvml.c")],
                   check=True)
    cache = tmp_path / "cache"
    env = {"COMPAT_CACHE_DIR": str(cache), "LD_LIBRARY_PATH": str(lib)}
    inodes = []
    for _ in range(2):
        proc = run_hostile("detect", "--json", env=env)
        assert json.loads(proc.stdout)["sources"]["gpus.nvidia"].startswith("NVML")
        inodes.append(os.stat(cache / f"profile-{profile_cache._node_name()}.json").st_ino)
    assert inodes[0] == inodes[1]                                     # the second run was a hit
    keys = [o[:2] for o in profile_cache.ProfileCache(path=str(cache / os.listdir(cache)[0])).entries()[0]["observed"]
            if o[0] in ("read", "list")]
    assert ["read", "/proc/self/cgroup"] in keys and ["list", "/proc/driver/nvidia/gpus"] in keys
    assert ["list", str(lib)] in keys                                 # LD_LIBRARY_PATH's directory


def test_a_miss_answered_by_the_probe_cache_keeps_every_key(probes, fakebin):
    """After a miss, probes whose inputs did not change answer from probes.json without
    running: the new entry must still be keyed by what those answers depend on (the
    executable, the loader's cache), or a later change to them would go unseen."""
    compat.host.detect(env=_live(fakebin))
    first = {tuple(o[:2]) for o in profile_cache.ProfileCache().entries()[0]["observed"]}
    compat.host.detect(env=_live(fakebin, CRAY_MPICH_VERSION="8.1.27"))        # a miss; no child runs
    second = {tuple(o[:2]) for o in profile_cache.ProfileCache().entries()[0]["observed"]}
    assert len(probes) == 2
    assert ("exe", os.path.realpath(fakebin / "mpirun")) in first and ("stat", "/etc/ld.so.cache") in first
    children = {o for o in first if o[0] in ("exe", "stat")}             # what the children depended on
    assert children and children - second == set()
