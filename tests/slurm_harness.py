"""A real one-node Slurm (Debian's slurmctld, slurmd, munge) under a temporary directory,
for tests/test_plan_slurm.py.

Everything lives under ``root``: a munge key and munged's socket, ``slurm.conf`` (loopback
ports picked free, state and spool directories, proctrack/task settings that work without
systemd or cgroups in a container, ``SlurmUser=root``), logs. The daemons run in the
foreground as our children (``-D``/``-F``) and are stopped by PID. ``SLURM_CONF`` in
:attr:`env` points sbatch/scontrol/sinfo at this cluster. :class:`Unavailable` says exactly
why the cluster cannot run here (the tests skip with that text).
"""
import os
import shutil
import signal
import socket
import subprocess
import time

BINARIES = ("munged", "mungekey", "slurmctld", "slurmd", "sbatch", "scontrol", "sinfo")
PLUGIN_DIRS = ("/usr/lib/x86_64-linux-gnu/slurm-wlm", "/usr/lib/aarch64-linux-gnu/slurm-wlm",
               "/usr/lib64/slurm", "/usr/lib/slurm")


class Unavailable(Exception):
    """The cluster cannot run here; the message says why."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(predicate, seconds: float, what: str, log_paths=()):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    tails = []
    for p in log_paths:
        try:
            with open(p, errors="replace") as f:
                tails.append(f"{os.path.basename(p)}: " + " | ".join(f.read().splitlines()[-3:]))
        except OSError:
            pass
    raise Unavailable(f"{what} within {seconds:g} s" + (f" ({'; '.join(tails)})" if tails else ""))


class SlurmCluster:
    """``with SlurmCluster(root, features=..., extra_conf=...) as c:`` one real node (this
    machine, named by its short host name) in partition ``debug``; ``extra_conf`` adds lines
    (FUTURE nodes and partitions standing for machines that do not exist here)."""

    def __init__(self, root: str, features=(), extra_nodes_in_debug=(), extra_conf: str = "",
                 cli_filter: str = None):
        self.root = root
        self.node = socket.gethostname().split(".")[0]
        self.features = tuple(features)
        self.extra_nodes = tuple(extra_nodes_in_debug)
        self.extra_conf = extra_conf
        self.cli_filter = cli_filter
        self.procs = []
        self.conf = os.path.join(root, "slurm.conf")
        self.env = dict(os.environ, SLURM_CONF=self.conf)

    # -- set-up ---------------------------------------------------------------------------
    def _check(self):
        missing = [b for b in BINARIES if not shutil.which(b) and not os.path.exists(f"/usr/sbin/{b}")]
        if missing:
            raise Unavailable(f"Slurm/munge not installed: {', '.join(missing)} missing "
                              "(Debian packages slurmctld slurmd slurm-client munge; ./dev setup installs them)")
        if os.geteuid() != 0:
            raise Unavailable("slurmd must run as root to launch jobs (the suite is not root here)")
        if self.cli_filter and not any(os.path.exists(os.path.join(d, "cli_filter_lua.so")) for d in PLUGIN_DIRS):
            raise Unavailable("cli_filter_lua.so not found (Debian package slurm-wlm-basic-plugins)")

    def _which(self, name):
        return shutil.which(name) or f"/usr/sbin/{name}"

    def _start(self, argv, log):
        out = open(log, "ab")
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=self.env,
                                start_new_session=True)
        out.close()
        self.procs.append(proc)
        return proc

    def _munge(self):
        m = os.path.join(self.root, "munge")
        os.makedirs(m, mode=0o700, exist_ok=True)
        key = os.path.join(m, "munge.key")
        proc = subprocess.run([self._which("mungekey"), "--create", f"--keyfile={key}"], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            with open(key, "wb") as f:
                f.write(os.urandom(1024))
        os.chmod(key, 0o400)
        self.munge_socket = os.path.join(m, "munge.socket")
        self._start([self._which("munged"), "-F", "--force", f"--key-file={key}", f"--socket={self.munge_socket}",
                     f"--pid-file={m}/munged.pid", f"--log-file={m}/munged.log", f"--seed-file={m}/seed"],
                    os.path.join(m, "munged.out"))
        _wait(lambda: os.path.exists(self.munge_socket), 15, "munged did not create its socket",
              [f"{m}/munged.log", f"{m}/munged.out"])

    def _write_conf(self):
        r = self.root
        for d in ("state", "spool", "log"):
            os.makedirs(os.path.join(r, d), exist_ok=True)
        cpus = os.cpu_count() or 1
        nodes = ",".join((self.node,) + self.extra_nodes)
        feats = f" Features={','.join(self.features)}" if self.features else ""
        self.ctl_port, self.slurmd_port = _free_port(), _free_port()
        text = f"""ClusterName=compattest
SlurmctldHost={self.node}(127.0.0.1)
SlurmctldPort={self.ctl_port}
SlurmdPort={self.slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={self.munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={r}/state
SlurmdSpoolDir={r}/spool
SlurmctldPidFile={r}/slurmctld.pid
SlurmdPidFile={r}/slurmd.pid
SlurmctldLogFile={r}/log/slurmctld.log
SlurmdLogFile={r}/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/builtin
MpiDefault=none
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
KillWait=2
PlugStackConfig={r}/plugstack.conf
{"CliFilterPlugins=cli_filter/lua" if self.cli_filter else ""}
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=256 State=UNKNOWN{feats}
{self.extra_conf}
PartitionName=debug Nodes={nodes} Default=YES MaxTime=INFINITE State=UP
"""
        with open(self.conf, "w") as f:
            f.write(text)
        open(os.path.join(r, "plugstack.conf"), "w").close()
        if self.cli_filter:
            shutil.copy(self.cli_filter, os.path.join(r, "cli_filter.lua"))

    def node_state(self) -> str:
        p = subprocess.run(["sinfo", "-h", "-n", self.node, "-o", "%t"], capture_output=True, text=True,
                           env=self.env, timeout=10)
        return p.stdout.strip()

    def __enter__(self):
        self._check()
        try:
            self._munge()
            self._write_conf()
            log = os.path.join(self.root, "log")
            self._start([self._which("slurmctld"), "-D", "-i", "-f", self.conf], f"{log}/slurmctld.out")
            _wait(lambda: subprocess.run(["scontrol", "ping"], capture_output=True, env=self.env,
                                         timeout=10).returncode == 0,
                  30, "slurmctld did not answer scontrol ping", [f"{log}/slurmctld.log", f"{log}/slurmctld.out"])
            self._start([self._which("slurmd"), "-D", "-f", self.conf, "-N", self.node], f"{log}/slurmd.out")
            _wait(lambda: self.node_state() in ("idle", "mix", "alloc"), 60,
                  "the node did not become idle", [f"{log}/slurmd.log", f"{log}/slurmd.out",
                                                   f"{log}/slurmctld.log"])
        except Exception:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        """Stop every daemon we started, by PID, newest first."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=5)
        self.procs = []

    # -- use ------------------------------------------------------------------------------
    def sbatch(self, script: str, *args, env=None, timeout=60):
        full = dict(self.env, **(env or {}))
        return subprocess.run(["sbatch", "--parsable", *args], input=script, capture_output=True, text=True,
                              env=full, timeout=timeout, cwd=self.root)

    def scontrol(self, *args) -> str:
        return subprocess.run(["scontrol", *args], capture_output=True, text=True, env=self.env,
                              timeout=20).stdout

    def wait_job(self, job_id: str, seconds: float = 60) -> str:
        """Wait until the job has ended; its final state."""
        state = {}

        def done():
            out = self.scontrol("show", "job", job_id)
            for word in out.split():
                if word.startswith("JobState="):
                    state["s"] = word.split("=", 1)[1]
            return state.get("s") in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY")
        _wait(done, seconds, f"job {job_id} did not end (state {state.get('s')})")
        return state["s"]
