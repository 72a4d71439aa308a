"""A throwaway one-node SLURM cluster for the tests, from Debian's packages.

munge, MariaDB + slurmdbd (so that `sacct` keeps every job), slurmctld and slurmd run in the
foreground as children of the test process, so they are stopped by PID. The node has two fake
GPUs (a GRES of type `fake` on /dev/null clones) and three partitions on the same node: `debug`
(the default), `gpu` and `cpu`. Needs root: the config must be /etc/slurm/slurm.conf (the
executor plugin strips SLURM_CONF before its inner srun), and the daemons run as root.

    cluster = start(Path("/tmp/x"))   # raises Unavailable where SLURM cannot run here
    ...
    cluster.stop()

Works around what this sandbox lacks: no systemd (daemons started by hand), no cgroups
(proctrack/linuxproc, task/affinity).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "slurmdbd", "munge", "mariadb-server")
COMMANDS = ("slurmctld", "slurmd", "slurmdbd", "sbatch", "sacct", "munged", "mariadbd")
ETC = Path("/etc/slurm")
MARKER = "# written by tests/slurm_cluster.py"
NODE = "localnode"
PORTS = (6817, 6818, 6819)  # slurmctld, slurmd, slurmdbd


class Unavailable(Exception):
    """SLURM cannot run on this machine (the reason is the message); tests skip."""


def _run(*cmd: str, timeout: float = 30, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=check)


def _wait_for(what: str, ok: Callable[[], bool], timeout: float, log: Path | None = None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            if ok():
                return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}\n{tail}")


def _succeeds(*cmd: str) -> bool:
    return _run(*cmd, timeout=10, check=False).returncode == 0


def ensure_installed(timeout: float = 600) -> None:
    """apt-get install the packages that are missing; Unavailable if that cannot be done."""
    if os.geteuid() != 0:
        raise Unavailable("needs root (daemons and /etc/slurm/slurm.conf); CI runs it as root")
    if all(shutil.which(c) for c in COMMANDS):
        return
    if not shutil.which("apt-get"):
        raise Unavailable(f"SLURM is not installed and there is no apt-get to install {PACKAGES}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *PACKAGES]
    for cmd in (["apt-get", "update", "-qq"], install):
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise Unavailable(f"`{' '.join(cmd)}` took more than {timeout:.0f} s") from None
        if out.returncode != 0:
            raise Unavailable(f"`{' '.join(cmd)}` failed: {out.stderr.strip()[-1500:]}")
    missing = [c for c in COMMANDS if not shutil.which(c)]
    if missing:
        raise Unavailable(f"installed {PACKAGES}, still missing {missing}")


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the daemons do
        try:
            s.bind(("0.0.0.0", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Cluster:
    prefix: Path
    gpus: int
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    db_port: int = field(default_factory=_free_port)  # MariaDB on 127.0.0.1

    @property
    def log_dir(self) -> Path:
        return self.prefix / "log"

    def _spawn(self, name: str, cmd: list[str], **kwargs) -> subprocess.Popen:
        out = open(self.log_dir / f"{name}.out", "ab")  # noqa: SIM115 (kept by the child)
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True, **kwargs
        )
        out.close()
        self.procs[name] = proc
        (self.prefix / "pids").write_text("".join(f"{n} {p.pid}\n" for n, p in self.procs.items()))
        return proc

    def _alive(self, name: str) -> bool:
        return self.procs[name].poll() is None

    def start(self, with_db: bool = True) -> None:
        busy = [p for p in PORTS if not _port_free(p)]
        if busy:
            raise Unavailable(f"SLURM ports {busy} are in use (another SLURM runs here?)")
        conf = ETC / "slurm.conf"
        if conf.exists() and MARKER not in conf.read_text(errors="replace"):
            raise Unavailable(f"{conf} exists and was not written by this test; not touching it")
        if self.prefix.exists():
            shutil.rmtree(self.prefix)
        for d in ("state", "spool", "log", "fakegpu", "db"):
            (self.prefix / d).mkdir(parents=True)
        self._write_configs(with_db)
        try:
            self._start_munge()
            if with_db:
                self._start_db()
            self._spawn("slurmctld", ["slurmctld", "-D", "-i"])
            self._spawn("slurmd", ["slurmd", "-D", "-N", NODE])
            self._wait_idle()
        except BaseException:
            self.stop()
            raise

    def _write_configs(self, with_db: bool) -> None:
        ETC.mkdir(parents=True, exist_ok=True)
        hw = _run("slurmd", "-C").stdout.splitlines()[0].split()
        # NodeName=vm CPUs=2 Boards=1 ... RealMemory=24105: our node name, 85% of the memory
        fields = dict(f.split("=", 1) for f in hw)
        fields["NodeName"] = NODE
        fields["RealMemory"] = str(int(fields["RealMemory"]) * 85 // 100)
        node = " ".join(f"{k}={v}" for k, v in fields.items())
        # gres needs character devices; a /dev/null clone per fake GPU (mknod needs CAP_MKNOD)
        devices = []
        for i in range(self.gpus):
            dev = self.prefix / "fakegpu" / f"nvidia{i}"
            try:
                os.mknod(dev, 0o666 | 0o020000, os.makedev(1, 3))
            except OSError:
                break
            devices.append(str(dev))
        if not devices:
            devices = ["/dev/null"]
        self.gpus = len(devices)
        p = self.prefix
        acct = "AccountingStorageType=accounting_storage/none"
        if with_db:
            acct = (
                "AccountingStorageType=accounting_storage/slurmdbd\n"
                "AccountingStorageHost=localhost\nAccountingStoragePort=6819\n"
                "AccountingStorageTRES=gres/gpu\nAccountingStoreFlags=job_comment"
            )
        (ETC / "slurm.conf").write_text(f"""{MARKER}
ClusterName=testcluster
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
StateSaveLocation={p}/state
SlurmdSpoolDir={p}/spool
SlurmctldPidFile={p}/slurmctld.pid
SlurmdPidFile={p}/slurmd.pid
SlurmctldLogFile={p}/log/slurmctld.log
SlurmdLogFile={p}/log/slurmd.log
SlurmctldPort={PORTS[0]}
SlurmdPort={PORTS[1]}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
{acct}
MpiDefault=none
ReturnToService=2
MinJobAge=300
KillWait=5
GresTypes=gpu
{node} NodeAddr=127.0.0.1 NodeHostname={socket.gethostname().split(".")[0]} \
Gres=gpu:fake:{self.gpus} State=UNKNOWN
PartitionName=debug Nodes={NODE} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={NODE} MaxTime=INFINITE State=UP
PartitionName=cpu Nodes={NODE} MaxTime=INFINITE State=UP
""")
        (ETC / "gres.conf").write_text(
            f"{MARKER}\nAutoDetect=off\n"
            + "".join(f"NodeName={NODE} Name=gpu Type=fake File={d}\n" for d in devices)
        )
        if with_db:
            dbd = ETC / "slurmdbd.conf"
            dbd.write_text(f"""{MARKER}
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={PORTS[2]}
SlurmUser=root
LogFile={p}/log/slurmdbd.log
PidFile={p}/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={self.db_port}
StorageUser=slurm
StoragePass=slurmpw
StorageLoc=slurm_acct_db
""")
            dbd.chmod(0o600)  # slurmdbd refuses a readable one

    def _start_munge(self) -> None:
        if _succeeds("bash", "-c", "munge -n | unmunge"):
            return  # a munged is running already: use it, leave it running
        key = Path("/etc/munge/munge.key")
        if not key.exists() or key.stat().st_size == 0:
            _run("mungekey", "-c", "-k", str(key))
        shutil.chown(key, "munge", "munge")
        key.chmod(0o400)
        run_dir = Path("/run/munge")
        run_dir.mkdir(parents=True, exist_ok=True)
        shutil.chown(run_dir, "munge", "munge")
        self._spawn("munged", ["munged", "-F", "--force"], user="munge", group="munge")
        _wait_for(
            "munged",
            lambda: self._alive("munged") and _succeeds("bash", "-c", "munge -n | unmunge"),
            20,
            self.log_dir / "munged.out",
        )

    def _start_db(self) -> None:
        p = self.prefix
        sock = str(p / "db/mysqld.sock")
        _run(
            "mariadb-install-db",
            "--no-defaults",
            "--user=root",
            f"--datadir={p}/db/data",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
            timeout=120,
        )
        self._spawn(
            "mariadbd",
            [
                "mariadbd",
                "--no-defaults",
                "--user=root",
                f"--datadir={p}/db/data",
                f"--socket={sock}",
                f"--pid-file={p}/db/mysqld.pid",
                f"--port={self.db_port}",
                "--bind-address=127.0.0.1",
                "--innodb-buffer-pool-size=64M",
                f"--log-error={p}/log/mysqld.err",
            ],
        )
        sql = ["mariadb", "--no-defaults", "-S", sock, "-uroot"]
        _wait_for(
            "mariadbd",
            lambda: self._alive("mariadbd") and _succeeds(*sql, "-e", "select 1"),
            60,
            p / "log/mysqld.err",
        )
        grants = "".join(
            f"CREATE USER IF NOT EXISTS 'slurm'@'{h}' IDENTIFIED BY 'slurmpw';"
            f"GRANT ALL ON slurm_acct_db.* TO 'slurm'@'{h}';"
            for h in ("localhost", "127.0.0.1")
        )
        _run(*sql, "-e", f"CREATE DATABASE IF NOT EXISTS slurm_acct_db;{grants}FLUSH PRIVILEGES;")
        self._spawn("slurmdbd", ["slurmdbd", "-D"])
        _wait_for(
            "slurmdbd",
            lambda: self._alive("slurmdbd") and _succeeds("sacctmgr", "-n", "list", "cluster"),
            60,
            p / "log/slurmdbd.log",
        )

    def _wait_idle(self) -> None:
        def state() -> str:
            for name in ("slurmctld", "slurmd"):
                if not self._alive(name):
                    raise RuntimeError(f"{name} exited: {self.logs()}")
            return _run("sinfo", "-h", "-n", NODE, "-o", "%t", timeout=10).stdout.strip()

        try:
            _wait_for("the node to be idle", lambda: state() == "idle", 20)
        except RuntimeError:  # registered as down/inval: resume it once
            _run("scontrol", "update", f"nodename={NODE}", "state=resume", check=False)
            _wait_for("the node to be idle", lambda: state() == "idle", 20)
        if "slurmdbd" in self.procs:  # slurmctld registered the cluster and its root account
            _wait_for(
                "the root association",
                lambda: "root" in _run("sacctmgr", "-n", "-P", "list", "assoc").stdout,
                30,
            )

    def logs(self, chars: int = 2000) -> str:
        return "\n".join(
            f"--- {f.name}\n{f.read_text(errors='replace')[-chars:]}"
            for f in sorted(self.log_dir.glob("*"))
            if f.is_file()
        )

    def stop(self, timeout: float = 15) -> None:
        """Cancel every job, then TERM the daemons this object started (by PID), KILL if needed."""
        if "slurmctld" in self.procs and self._alive("slurmctld"):
            _run("scancel", "--full", "--user=root", timeout=10, check=False)
            with contextlib.suppress(RuntimeError):
                _wait_for(
                    "no jobs left",
                    lambda: not _run("squeue", "-h", "-o", "%i", timeout=10).stdout.strip(),
                    timeout,
                )
        for name in ("slurmd", "slurmctld", "slurmdbd", "mariadbd", "munged"):
            proc = self.procs.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout)
        with contextlib.suppress(FileNotFoundError):
            (self.prefix / "pids").unlink()
        shutil.rmtree(self.prefix / "db", ignore_errors=True)  # ~180 MB of MariaDB files


def stop_stale(prefix: Path) -> None:
    """Stop the daemons a killed earlier session left behind (from its PID file, if still ours)."""
    pids = prefix / "pids"
    if not pids.exists():
        return
    for line in pids.read_text().splitlines():
        name, pid = line.split()
        with contextlib.suppress(OSError):
            comm = Path(f"/proc/{pid}/comm").read_text().strip()
            if comm == name:  # not a recycled PID
                os.kill(int(pid), signal.SIGTERM)
    time.sleep(2)


def start(prefix: Path, gpus: int = 2, with_db: bool = True) -> Cluster:
    """Install what is missing, start the daemons, wait until the node is idle."""
    ensure_installed()
    stop_stale(prefix)
    cluster = Cluster(prefix, gpus)
    cluster.start(with_db)
    return cluster
