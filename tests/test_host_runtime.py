"""Runtime facts (issue 15 item 1; spec/host.md "Runtimes", "Rootless facts"): each runtime's
version and Apptainer's setuid facts, user namespaces, subordinate IDs, /dev/fuse, FUSE
helpers, overlay — from sysroot captures (the committed fixtures/hosts/apptainer-ubuntu2404
and copies varied per case), from this machine, through --assume, detect's text, the profile
schema and NFD features. Hostile captures give unknown with a reason, never a crash."""
import json
import os
import re
import shutil
import stat

import jsonschema
import pytest
from hypothesis import given, settings, strategies as st

import compat
from compat.errors import BadInput
from compat.host.profile import Host, Rootless, Runtime
from compat.host.root import Root
from compat.host.runtime import config_values, parse_config
from compat.nfd.features import local_feature_file
from compat.nfd.nodefeature import from_export, to_host
from compat.vocab.data import fuse_helpers, runtimes
from conftest import HOSTS, REPO
from helpers import run_hostile

NODE = os.path.join(HOSTS, "apptainer-ubuntu2404")
SCHEMA = json.load(open(os.path.join(REPO, "compat", "schemas", "host.schema.json")))
IS_ROOT = os.geteuid() == 0


@pytest.fixture
def node(tmp_path):
    root = tmp_path / "node"
    shutil.copytree(NODE, root, symlinks=True)
    return root


def put(root, rel, content):
    path = root / rel
    if path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if callable(content):
        content(path)
    else:
        path.write_text(content)


def detect(root, *assume):
    return compat.detect(sysroot=str(root), assume=["os.arch=amd64", *assume])


def runtime(host, name):
    return next(r for r in host.runtimes if r.name == name)


# -- the committed capture --------------------------------------------------------------------

def test_committed_capture_reads_every_fact():
    h = detect(NODE)
    assert [(r.name, r.version, r.path) for r in h.runtimes] == [
        ("apptainer", "1.3.4", "/usr/bin/apptainer"), ("podman", "4.9.3", "/usr/bin/podman"),
        ("enroot", "3.4.1", "/usr/local/bin/enroot")]
    app = runtime(h, "apptainer")
    assert (app.allow_setuid, app.allow_kernel_squashfs, app.max_loop_devices) == (True, True, 256)
    assert app.setuid is False            # git keeps no owner or setuid bit
    x = h.rootless
    assert (x.user, x.max_user_namespaces, x.unprivileged_userns_clone, x.apparmor_restrict_userns) == \
        ("alice", 1030341, True, True)
    assert (x.userns, x.subuid, x.subgid, x.fuse, x.overlay) == (False, True, True, True, True)
    assert x.fuse_helpers == ("squashfuse", "squashfuse_ll", "fuse2fs", "fuse-overlayfs", "fusermount3")
    assert "AppArmor profile allows userns" in h.sources["rootless.userns"]
    assert "podman (4.9.3+ds1-1ubuntu0.2)" in h.sources["runtime.podman"]
    jsonschema.validate(h.to_dict(), SCHEMA)


def test_a_removed_package_gives_no_version(node):
    """docker.io is ``deinstall ok config-files`` in the capture: a docker binary left behind
    has no version from it, and says why."""
    put(node, "usr/bin/docker", "")
    h = detect(node)
    assert runtime(h, "docker").version is None
    assert h.sources["runtime.docker"].endswith("no package record or version variable says it")


def test_charliecloud_is_found_by_its_executable(node):
    put(node, "usr/bin/ch-run", "")
    put(node, "var/lib/dpkg/status", "Package: charliecloud-runtime\nStatus: install ok installed\n"
                                     "Version: 0.31-1\n")
    assert runtime(detect(node), "charliecloud").version == "0.31"


# -- user namespaces ----------------------------------------------------------------------------

@pytest.mark.parametrize("max_ns,clone,apparmor,userns,why", [
    ("15000", "1", "0", True, "is 15000, no knob restricts"),
    ("15000", None, None, True, "is 15000, no knob restricts"),      # no Debian/Ubuntu knobs: upstream kernel
    ("0", "1", "0", False, "max_user_namespaces is 0"),
    ("15000", "0", "0", False, "unprivileged_userns_clone is 0"),
    ("15000", "1", "1", False, "restricted by AppArmor"),
    (None, None, None, None, "unknown"),
    ("lots", "1", "0", None, "unknown"),
])
def test_user_namespaces(node, max_ns, clone, apparmor, userns, why):
    for rel, value in (("proc/sys/user/max_user_namespaces", max_ns),
                       ("proc/sys/kernel/unprivileged_userns_clone", clone),
                       ("proc/sys/kernel/apparmor_restrict_unprivileged_userns", apparmor)):
        put(node, rel, value) if value is not None else (node / rel).unlink()
    h = detect(node)
    assert h.rootless.userns is userns and why in h.sources["rootless.userns"]
    assert h.rootless.unprivileged_userns_clone is (None if clone is None else clone == "1")
    if clone is None:
        assert "absent (this kernel has no such knob)" in h.sources["rootless.unprivileged_userns_clone"]


# -- subordinate IDs ----------------------------------------------------------------------------

@pytest.mark.parametrize("subuid,expected", [
    ("alice:100000:65536\n", True),
    ("1000:100000:65536\n", True),                  # by numeric uid (subuid(5))
    ("# ranges\nbob:100000:65536\n", False),        # someone else's
    ("alice:100000:0\n", False),                    # an empty range
    ("alice:100000\nalice::65536\n", False),        # malformed lines are no range
    ("", False),                                    # empty file: no ranges
    (None, False),                                  # no file: no ranges
    (os.mkfifo, None),                              # not a regular file: unknown
    (lambda p: p.write_bytes(os.urandom(4096)), False),
])
def test_subuid(node, subuid, expected):
    if subuid is None:
        (node / "etc/subuid").unlink()
    else:
        put(node, "etc/subuid", subuid)
    h = detect(node)
    assert h.rootless.subuid is expected, h.sources["rootless.subuid"]
    assert h.rootless.subgid is True


def test_the_user_comes_from_the_capture_not_the_environment(node):
    (node / "proc/self/status").unlink()
    h = detect(node)
    assert (h.rootless.user, h.rootless.subuid, h.rootless.subgid) == (None, None, None)
    assert "no Uid line" in h.sources["rootless.user"]
    put(node, "proc/self/status", "Uid:\t4242\t4242\t4242\t4242\n")     # not in /etc/passwd
    h = detect(node)
    assert (h.rootless.user, h.rootless.subuid) == ("4242", False)
    put(node, "etc/subuid", "4242:200000:65536\n")
    assert detect(node).rootless.subuid is True


# -- /dev/fuse and the helpers -----------------------------------------------------------------

def test_fuse_from_proc_misc(node):
    assert detect(node).rootless.fuse is True
    put(node, "proc/misc", "237 loop-control\n")
    h = detect(node)
    assert h.rootless.fuse is None and "does not list fuse" in h.sources["rootless.fuse"]


def test_a_capture_with_dev_but_no_fuse_has_none(node):
    (node / "dev").mkdir()
    (node / "dev/null").write_text("")
    h = detect(node)
    assert h.rootless.fuse is False and "has no fuse" in h.sources["rootless.fuse"]


def _mknod_or_skip(path, mode):
    try:
        os.mknod(path, stat.S_IFCHR | mode, os.makedev(10, 229))
    except PermissionError:
        pytest.skip("no CAP_MKNOD here: a device node cannot be made")
    os.chmod(path, mode)


@pytest.mark.parametrize("mode,expected", [(0o666, True), (0o600, False)])
def test_fuse_device_node_kept_in_the_capture(node, mode, expected):
    (node / "dev").mkdir()
    _mknod_or_skip(node / "dev/fuse", mode)
    h = detect(node)
    assert h.rootless.fuse is expected
    assert f"character device 10,229, mode {mode:04o}" in h.sources["rootless.fuse"]


@pytest.mark.parametrize("make", [lambda p: p.write_text("x"), os.mkfifo, lambda p: os.symlink("/etc/shadow", p)])
def test_fuse_that_is_no_device_is_not_usable(node, make):
    put(node, "dev/fuse", make)
    (node / "etc/shadow").write_text("root:*:19000::::::\n")
    assert detect(node).rootless.fuse is False


def test_fuse_helpers_in_bin_dirs(node):
    for name in ("squashfuse", "squashfuse_ll", "fuse-overlayfs"):
        (node / "usr/bin" / name).unlink()
    put(node, "usr/sbin/fuse2fs", "")
    (node / "usr/bin/fuse2fs").unlink()
    os.symlink("/nowhere/fusermount", node / "usr/bin/fusermount")   # dangling: not found
    assert detect(node).rootless.fuse_helpers == ("fuse2fs", "fusermount3")


@pytest.mark.parametrize("release,expected", [("5.10.0-28-amd64", False), ("5.11.0", True),
                                              ("4.18.0-553.el8_10.x86_64", False), ("6.8.0-45-generic", True)])
def test_overlay_from_the_kernel(node, release, expected):
    put(node, "proc/sys/kernel/osrelease", release)
    assert detect(node).rootless.overlay is expected


# -- Apptainer: setuid starter and apptainer.conf ---------------------------------------------

@pytest.mark.skipif(not IS_ROOT, reason="a root-owned setuid file needs root to make")
def test_setuid_apptainer_with_allow_setuid_no(node):
    starter = node / "usr/libexec/apptainer/bin/starter-suid"
    os.chown(starter, 0, 0)
    os.chmod(starter, 0o4755)
    put(node, "etc/apptainer/apptainer.conf", "# ALLOW SETUID: [BOOL]\nallow setuid = no\n")
    h = detect(node)
    app = runtime(h, "apptainer")
    assert (app.setuid, app.allow_setuid, app.allow_kernel_squashfs, app.max_loop_devices) == (True, False, True, 256)
    assert "mode 4755 (setuid root)" in h.sources["runtime.apptainer.setuid"]
    assert "allow kernel squashfs absent, default yes" in h.sources["runtime.apptainer.config"]
    text = run_hostile("detect", "--sysroot", str(node), "--assume", "os.arch=amd64").stdout
    assert "runtime    apptainer 1.3.4 (/usr/bin/apptainer, setuid starter yes, allow setuid no, " \
           "allow kernel squashfs yes, max loop devices 256)" in text
    assert 'runtime.apptainer.setuid=false' in run_hostile(
        "detect", "--sysroot", str(node), "--assume", "os.arch=amd64", "--format", "nfd-features").stdout


@pytest.mark.parametrize("owner,mode,expected", [(1000, 0o4755, False), (0, 0o0755, False), (0, 0o4755, True)])
def test_starter_suid_must_be_setuid_root(node, owner, mode, expected):
    starter = node / "usr/libexec/apptainer/bin/starter-suid"
    if owner != os.geteuid() and not IS_ROOT:
        pytest.skip("chown needs root")
    os.chown(starter, owner, owner)
    os.chmod(starter, mode)
    assert runtime(detect(node), "apptainer").setuid is expected


def test_without_starter_suid_it_is_a_non_setuid_installation(node):
    (node / "usr/libexec/apptainer/bin/starter-suid").unlink()
    h = detect(node)
    assert runtime(h, "apptainer").setuid is False
    assert "without starter-suid beside it" in h.sources["runtime.apptainer.setuid"]
    shutil.rmtree(node / "usr/libexec")
    h = detect(node)
    assert runtime(h, "apptainer").setuid is None and "unknown" in h.sources["runtime.apptainer.setuid"]


def test_an_opt_prefix_installation_finds_its_own_files(node):
    """install from source with --prefix=/opt/apptainer: the starter and the configuration
    lie below that prefix; the /usr ones are another installation's."""
    shutil.rmtree(node / "usr/libexec")
    (node / "usr/bin/apptainer").unlink()
    put(node, "opt/apptainer/bin/apptainer", "")
    put(node, "opt/apptainer/libexec/apptainer/bin/starter", "")
    put(node, "opt/apptainer/etc/apptainer/apptainer.conf", "max loop devices = 64\n")
    h = detect(node)
    app = runtime(h, "apptainer")
    assert (app.path, app.setuid, app.max_loop_devices) == ("/opt/apptainer/bin/apptainer", False, 64)
    assert "opt/apptainer/etc/apptainer/apptainer.conf" in h.sources["runtime.apptainer.config"]


# The parser's rules, from Apptainer's own (pkg/util/apptainerconf parser.go, config.go and
# parser_test.go): `key = value` lines, keys of letters, blanks, '_' and '-'; empty values
# ignored; the first value used; yes/no booleans; max loop devices an unsigned integer as
# strconv.ParseUint(v, 0, 64) reads it (-42 refused); absent keys take the default tags.
@pytest.mark.parametrize("text,expected", [
    ("allow setuid = no\n", {"allow_setuid": False, "allow_kernel_squashfs": True, "max_loop_devices": 256}),
    ("allow setuid=no\nallow setuid = yes\n", {"allow_setuid": False}),             # the first value wins
    ("allow setuid =\nallow setuid = no\n", {"allow_setuid": False}),               # an empty value is none
    ("#allow setuid = no\n   # allow setuid = no\n", {"allow_setuid": True}),       # comments
    ("  allow setuid \t=\t no \r\n", {"allow_setuid": False}),                      # blanks, CRLF
    ("allow setuid = maybe\n", {"allow_setuid": None}),                             # Apptainer refuses it
    ("allow setuid = no # not here\n", {"allow_setuid": None}),                     # no trailing comments
    ("Allow Setuid = no\n", {"allow_setuid": True}),                                # keys are case-sensitive
    ("max loop devices = 42\n", {"max_loop_devices": 42}),
    ("max loop devices = 0x10\n", {"max_loop_devices": 16}),
    ("max loop devices = 010\n", {"max_loop_devices": 8}),                          # Go: a leading 0 is octal
    ("max loop devices = -42\n", {"max_loop_devices": None}),
    ("max loop devices = 99999999999999999999999\n", {"max_loop_devices": None}),
    ("allow kernel squashfs = no\n", {"allow_kernel_squashfs": False}),
])
def test_config_as_apptainer_reads_it(text, expected):
    values, notes = config_values(text)
    for field, value in expected.items():
        assert values.get(field) == value, (field, notes)


def test_malformed_lines_are_ignored_with_a_note():
    values, notes = config_values("allow setuid = no\nthis is not a directive\n%%%\n")
    assert values["allow_setuid"] is False and "2 malformed lines ignored" in notes


_GO_DIRECTIVE = re.compile(r"^[\t\n\f\r ]*([a-zA-Z _-]+)[ \t]*=[ \t]*(.*)$", re.MULTILINE)


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(
    st.sampled_from(["allow setuid", "max loop devices", " allow kernel squashfs", "bind path", "#allow setuid",
                     "", "a-b_c"]),
    st.text(alphabet="ab _-#=\t\r\x0b:", max_size=12)).flatmap(
        lambda key: st.tuples(st.just(key), st.sampled_from(["=", " = ", "", "=="]),
                              st.text(alphabet="yesno 0x1\t#=", max_size=8))), max_size=8))
def test_parser_agrees_with_apptainers_expression(lines):
    """Apptainer's parser is one regular expression over the file (parser.go, parserReg); ours
    reads line by line: the directives must be the same (the first non-empty value per key)."""
    text = "\n".join(k + sep + v for k, sep, v in lines)
    expected = {}
    for m in _GO_DIRECTIVE.finditer(text):
        key, value = m.group(1).strip(), m.group(2).strip()
        if value and key not in expected:
            expected[key] = value
    got, _ = parse_config(text)
    assert {k: v for k, v in got.items() if k} == {k: v for k, v in expected.items() if k}


@pytest.mark.parametrize("make,why", [
    (lambda p: p.write_bytes(b"allow setuid = no\n" + b"#" * (1 << 20)), "not a text file of at most 1 MiB"),
    (lambda p: p.write_bytes(b"\x7fELF\x00\x01" + os.urandom(8192)), "not a text file"),
    (os.mkfifo, "not a text file"),
    (lambda p: os.symlink("/etc/shadow", p), "no configuration file"),
])
def test_hostile_config_is_unknown_with_a_reason(node, make, why):
    put(node, "etc/apptainer/apptainer.conf", make)
    proc = run_hostile("detect", "--json", "--sysroot", str(node), "--assume", "os.arch=amd64")
    assert proc.returncode == 0
    got = json.loads(proc.stdout)
    app = got["runtimes"][0]
    assert (app["name"], app["allow_setuid"], app["max_loop_devices"]) == ("apptainer", None, None)
    assert why in got["sources"]["runtime.apptainer.config"]


def test_hostile_capture_files_never_crash(node):
    """Garbage, FIFOs, huge files and links out of the sysroot where every runtime fact is read."""
    put(node, "var/lib/dpkg/status", lambda p: p.write_bytes(os.urandom(1 << 16)))
    put(node, "usr/local/bin/enroot", lambda p: p.write_bytes(b"#!" + b"readonly ENROOT_VERSION=" * 20000))
    put(node, "proc/self/status", os.mkfifo)
    put(node, "etc/passwd", lambda p: os.symlink("/etc/shadow", p))
    put(node, "etc/subgid", lambda p: p.write_bytes(b"\x00" * 100))
    put(node, "proc/misc", lambda p: p.write_bytes(b"\xff\xfe" * 1000))
    put(node, "proc/sys/user/max_user_namespaces", "9" * 100)
    put(node, "proc/sys/kernel/unprivileged_userns_clone", "2")
    with open(node / "proc/sys/kernel/apparmor_restrict_unprivileged_userns", "r+b") as fh:
        fh.truncate(1 << 30)                                            # sparse, 1 GiB
    proc = run_hostile("detect", "--json", "--sysroot", str(node), "--assume", "os.arch=amd64")
    assert proc.returncode == 0
    got = json.loads(proc.stdout)
    jsonschema.validate(got, SCHEMA)
    x = got["rootless"]
    assert (x["user"], x["max_user_namespaces"], x["unprivileged_userns_clone"], x["userns"]) == (None, None, None, None)
    assert [r["version"] for r in got["runtimes"]] == [None, None, None]
    assert "holds no count" in got["sources"]["rootless.max_user_namespaces"]
    assert run_hostile("detect", "--sysroot", str(node), "--assume", "os.arch=amd64").returncode == 0


# -- this machine -------------------------------------------------------------------------------

def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def test_live_facts_agree_with_the_kernel_files():
    h = compat.detect()
    x = h.rootless
    max_ns = _read("/proc/sys/user/max_user_namespaces")
    assert x.max_user_namespaces == (int(max_ns) if max_ns else None)
    clone = _read("/proc/sys/kernel/unprivileged_userns_clone")
    assert x.unprivileged_userns_clone == (None if clone is None else clone == "1")
    apparmor = _read("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")
    assert x.apparmor_restrict_userns == (None if apparmor is None else apparmor == "1")
    if max_ns:
        assert x.userns == (int(max_ns) > 0 and clone != "0" and apparmor != "1")
    try:
        st = os.stat("/dev/fuse")
        usable = stat.S_ISCHR(st.st_mode) and os.access("/dev/fuse", os.R_OK | os.W_OK)
    except OSError:
        usable = False
    assert x.fuse is usable
    assert x.fuse_helpers == tuple(n for n in ("squashfuse", "squashfuse_ll", "fuse2fs", "fuse-overlayfs",
                                               "fusermount3", "fusermount") if shutil.which(n))
    assert x.user and h.sources["rootless.user"].startswith(f"uid {os.getuid()} ")
    jsonschema.validate(h.to_dict(), SCHEMA)


def test_live_runtimes_are_the_ones_on_path():
    h = compat.detect()
    on_path = [n for n, exe in (("apptainer", "apptainer"), ("singularity", "singularity"), ("podman", "podman"),
                                ("docker", "docker"), ("enroot", "enroot"), ("sarus", "sarus"),
                                ("charliecloud", "ch-run"), ("shifter", "shifter")) if shutil.which(exe)]
    assert [r.name for r in h.runtimes] == on_path
    for r in h.runtimes:
        assert r.path == shutil.which(os.path.basename(r.path))


@pytest.mark.skipif(not shutil.which("podman"), reason="podman is not installed (Debian: apt-get install podman)")
def test_live_podman_version_is_what_podman_says():
    import subprocess
    said = subprocess.run(["podman", "--version"], capture_output=True, text=True).stdout
    version = runtime(compat.detect(), "podman").version
    assert version and version in said


def test_live_apptainer_prefix_install(tmp_path, monkeypatch):
    """Apptainer is no Debian package: an installation prefix with a stand-in executable (it
    only prints its version, as `apptainer --version` does) shows the live lookup of the
    version, the starter and the configuration beside the executable."""
    prefix = tmp_path / "apptainer"
    exe = prefix / "bin/apptainer"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho 'apptainer version 1.3.4-1.el9'\n")
    exe.chmod(0o755)
    (prefix / "libexec/apptainer/bin").mkdir(parents=True)
    (prefix / "libexec/apptainer/bin/starter").write_text("")
    (prefix / "etc/apptainer").mkdir(parents=True)
    (prefix / "etc/apptainer/apptainer.conf").write_text("allow setuid = no\nmax loop devices = 12\n")
    env = {"PATH": f"{prefix / 'bin'}:/usr/bin:/bin"}
    h = compat.detect(env=env)
    app = runtime(h, "apptainer")
    assert (app.version, app.path, app.setuid, app.allow_setuid, app.max_loop_devices) == \
        ("1.3.4-1.el9", str(exe), False, False, 12)


# -- --assume, NFD, schema ----------------------------------------------------------------------

def test_assume_runtime_keys(node):
    h = detect(node, "runtime=apptainer@1.4.0,enroot", "userns=yes", "fuse=no", "subuid=no")
    assert [(r.name, r.version) for r in h.runtimes] == [("apptainer", "1.4.0"), ("enroot", "3.4.1")]
    assert runtime(h, "apptainer").max_loop_devices == 256           # detected facts kept
    assert (h.rootless.userns, h.rootless.fuse, h.rootless.subuid, h.rootless.subgid) == (True, False, False, True)
    assert h.sources["userns"] == "assumed (--assume userns=yes)"
    h = detect(node, "setuid=yes", "runtime.version=1.3.5")
    app = runtime(h, "apptainer")
    assert (app.version, app.setuid, app.allow_setuid) == ("1.3.5", True, True)
    assert detect(node, "runtime=none").runtimes == ()


@pytest.mark.parametrize("assume,message", [
    (["runtime=apptainer@1.3", "runtime.version=1.4"], "contradicts --assume runtime.version=1.4"),
    (["runtime=podman", "setuid=yes"], "needs an Apptainer or Singularity runtime"),
    (["runtime=none", "runtime.version=1.0"], "needs a runtime on the host"),
    (["runtime=podman,podman"], "each once"),
    (["runtime=rkt"], "wanted a list of runtimes"),
    (["runtime=apptainer@latest"], "wanted a list of runtimes"),
    (["fuse=maybe"], "wanted yes or no"),
])
def test_assume_refuses(node, assume, message):
    with pytest.raises(BadInput, match=re.escape(message)):
        detect(node, *assume)
    proc = run_hostile("detect", "--sysroot", str(node), *[x for a in assume for x in ("--assume", a)])
    assert proc.returncode == 2 and message in proc.stderr


def test_nfd_features_carry_the_runtime_facts_and_back(node):
    h = detect(node)
    text = local_feature_file(h)
    for line in ("hpc-compat.org/runtime.apptainer=1.3.4", "hpc-compat.org/runtime.apptainer.setuid=false",
                 "hpc-compat.org/runtime.apptainer.allow_setuid=true", "hpc-compat.org/runtime.apptainer.rank=1",
                 "hpc-compat.org/runtime.podman=4.9.3", "hpc-compat.org/rootless.userns=false",
                 "hpc-compat.org/rootless.subuid=true", "hpc-compat.org/rootless.fuse=true",
                 "hpc-compat.org/rootless.overlay=true", "hpc-compat.org/rootless.fuse.squashfuse=true"):
        assert line in text.splitlines()
    assert _read_back(h) == _without_paths(h)


def _read_back(host):
    """``host`` through ``--format nfd-features`` and a NodeFeature's local.feature: (runtimes,
    rootless) as compat reads them back."""
    text = local_feature_file(host)
    local = dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))
    back = to_host(from_export({"attributes": {"local.feature": {"elements": local}}}), "test")
    return back.runtimes, back.rootless


def _without_paths(host):
    """What a read-back can give: every fact but the executable's path (a file name on that
    node, not a fact a key reads; spec/host.md "NFD features")."""
    return (tuple(r._replace(path=None) for r in host.runtimes) if host.runtimes else None), host.rootless


def test_nfd_round_trip_keeps_setuid_facts_apart(node):
    """The reviewer's case: a non-setuid starter with ``allow setuid = yes`` read back as
    ``allow setuid no``; and a setuid starter with ``allow setuid = no``."""
    h = detect(node)
    assert runtime(h, "apptainer").allow_setuid is True
    back, _ = _read_back(h)
    assert (back[0].setuid, back[0].allow_setuid) == (False, True)
    turned = h._replace(runtimes=(runtime(h, "apptainer")._replace(setuid=True, allow_setuid=False),))
    back, _ = _read_back(turned)
    assert (back[0].setuid, back[0].allow_setuid) == (True, False)


def test_nfd_round_trip_through_the_cli(node, tmp_path):
    """detect --format nfd-features, wrapped as a NodeFeature, read back by --host: the same
    runtimes (in their order) and rootless facts as the --json profile."""
    args = ("detect", "--sysroot", str(node), "--assume", "os.arch=amd64")
    features = run_hostile(*args, "--format", "nfd-features").stdout
    local = dict(line.split("=", 1) for line in features.splitlines() if not line.startswith("#"))
    doc = {"apiVersion": "nfd.k8s-sigs.io/v1alpha1", "kind": "NodeFeature", "metadata": {"name": "n1"},
           "spec": {"features": {"attributes": {"local.feature": {"elements": local}}}}}
    (tmp_path / "nf.json").write_text(json.dumps(doc))
    source = json.loads(run_hostile(*args, "--json").stdout)
    back = json.loads(run_hostile("detect", "--host", str(tmp_path / "nf.json"), "--json").stdout)
    assert back["runtimes"] == [dict(r, path=None) for r in source["runtimes"]]
    assert back["rootless"] == source["rootless"]
    text = run_hostile("detect", "--host", str(tmp_path / "nf.json")).stdout
    assert "allow setuid yes" in text and "allow setuid no" not in text


_bool = st.sampled_from([None, True, False])
_count = st.one_of(st.none(), st.integers(0, 2147483647))


@st.composite
def _runtime_facts(draw):
    names = draw(st.lists(st.sampled_from(list(runtimes())), unique=True, max_size=4))
    rts = tuple(Runtime(name=n, version=draw(st.sampled_from([None, "1.3.4", "4.9.3-1", "0.31"])),
                        setuid=draw(_bool), allow_setuid=draw(_bool), allow_kernel_squashfs=draw(_bool),
                        max_loop_devices=draw(_count)) for n in names)
    rootless = draw(st.one_of(st.none(), st.builds(
        Rootless, user=st.sampled_from([None, "alice", "svc-hpc.1"]), max_user_namespaces=_count,
        unprivileged_userns_clone=_bool, apparmor_restrict_userns=_bool, userns=_bool, subuid=_bool,
        subgid=_bool, fuse=_bool, overlay=_bool,
        fuse_helpers=st.one_of(st.none(), st.lists(st.sampled_from(fuse_helpers()), unique=True).map(
            lambda hs: tuple(h for h in fuse_helpers() if h in hs)))).filter(lambda r: any(v is not None for v in r))))
    return Host(runtimes=rts or None, rootless=rootless)


@settings(max_examples=200, deadline=None, derandomize=True)
@given(_runtime_facts())
def test_nfd_round_trip_keeps_every_runtime_and_rootless_field(host):
    """Every field but the path, unknowns included (no feature; unknown again), the order of
    the runtimes (the first is the default runtime), FUSE helpers looked for and none found
    (``()``) apart from not looked for (``None``)."""
    assert _read_back(host) == _without_paths(host)


@pytest.mark.parametrize("value", ["-1", "2147483648", "9" * 5000, "1e3", "", "ten"])
def test_nfd_hostile_counts_are_unknown(value):
    """Counts a NodeFeature gives beyond the profile schema's range are unknown, never an
    int the schema refuses or Python's digit limit trips on."""
    local = {"hpc-compat.org/runtime.apptainer": "1.3.4", "hpc-compat.org/runtime.apptainer.rank": value,
             "hpc-compat.org/runtime.apptainer.max_loop_devices": value,
             "hpc-compat.org/rootless.userns": "true", "hpc-compat.org/rootless.max_user_namespaces": value}
    back = to_host(from_export({"attributes": {"local.feature": {"elements": local}}}), "test")
    assert (back.runtimes[0].max_loop_devices, back.rootless.max_user_namespaces) == (None, None)
    jsonschema.validate(back.to_dict(), SCHEMA)


def test_profile_round_trip_keeps_the_runtime_facts(node, tmp_path):
    h = detect(node)
    saved = tmp_path / "node.json"
    saved.write_text(json.dumps(h.to_dict()))
    again = compat.host.load(str(saved))
    assert again.runtimes == h.runtimes and again.rootless == h.rootless


def test_root_stat_stays_inside_the_sysroot(node):
    os.symlink("/etc/shadow", node / "link")
    root = Root(str(node))
    assert root.stat("/link") is None                       # the capture has no etc/shadow
    assert stat.S_ISLNK(root.stat("/link", follow_last=False).st_mode)
    assert root.access("/etc/passwd", os.R_OK) is None      # another machine's permission: unknown


@pytest.mark.skipif(not shutil.which("ch-run"), reason="charliecloud is not installed (Debian: charliecloud-runtime)")
def test_live_charliecloud_answers_without_user_in_the_environment(monkeypatch):
    """ch-run --version refuses to answer when $USER is unset (as in some batch jobs): the
    probe supplies it."""
    monkeypatch.setenv("COMPAT_NO_CACHE", "1")
    import subprocess
    said = subprocess.run(["ch-run", "--version"], capture_output=True, text=True,
                          env={"PATH": os.environ["PATH"], "USER": "nobody"})
    env = {"PATH": os.environ["PATH"]}                  # no USER
    version = runtime(compat.detect(env=env), "charliecloud").version
    assert version and version in said.stdout + said.stderr


@pytest.mark.skipif(not (shutil.which("dpkg-query") and os.path.exists("/var/lib/dpkg/status")),
                    reason="not a Debian system")
def test_dpkg_versions_agree_with_dpkg_query():
    """dpkg's own reader is the oracle: every installed package of this machine, and a removed
    one, read from the status file as dpkg-query reports it."""
    import subprocess
    from compat.host.runtime import dpkg_version
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Version}\n"],
                         capture_output=True, text=True, check=True).stdout
    text = open("/var/lib/dpkg/status").read()
    rows = [line.split("\t") for line in out.splitlines()]
    installed = {name: version for name, status, version in rows if status.startswith("ii")}
    assert len(installed) > 50
    for name, version in installed.items():
        assert dpkg_version(text, name.split(":")[0]) == version, name
    assert dpkg_version(text, "no-such-package-anywhere") is None


def test_detect_text_has_a_line_per_runtime_and_the_rootless_facts():
    from compat.cli.detect import summary
    lines = summary(detect(NODE)).splitlines()
    assert "runtime    podman 4.9.3 (/usr/bin/podman)" in lines
    assert "runtime    apptainer 1.3.4 (/usr/bin/apptainer, setuid starter no, allow setuid yes, " \
           "allow kernel squashfs yes, max loop devices 256)" in lines
    assert "rootless   user namespaces no (max 1030341), restricted by AppArmor; alice: subuid yes, subgid yes; " \
           "/dev/fuse yes, helpers squashfuse, squashfuse_ll, fuse2fs, fuse-overlayfs, fusermount3; " \
           "unprivileged overlay yes" in lines
    assert "runtime    none" in summary(detect(os.path.join(HOSTS, "ib-hdr-zen4"))).splitlines()
