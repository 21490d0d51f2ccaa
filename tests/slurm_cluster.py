"""A real one-node Slurm cluster on loopback for the tests: munged, MariaDB on a unix socket,
slurmdbd, slurmctld and slurmd (Debian 12's packages, which `.ci/run` installs), every file
under one temporary folder except the `/etc/slurm` links the daemons' clients need (the Slurm
executor plugin strips `SLURM_CONF` from its jobs, so a job step finds the cluster only there).

Partitions `cpu` (the default) and `gpu`; the node offers one GPU generic resource that is only
a name (`gres.conf`: `File=/dev/null`), so GPU requests are accepted and run on the CPU. With
`gpus=False` the cluster has no GPU resource at all, as a CPU-only cluster. Proctrack
`linuxproc` and no cgroup plugins, which run in containers. `stop()` ends every daemon by its
PID and removes the links.

    python tests/slurm_cluster.py   # start one, print its state, stop it
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")
ETC = Path("/etc/slurm")
LINKED = ("slurm.conf", "gres.conf", "slurmdbd.conf")


def available() -> str:
    """'' when this machine can run the cluster, else why not."""
    missing = [d for d in (*DAEMONS, "mariadb-install-db", "sbatch") if not shutil.which(d)
               and not Path("/usr/sbin", d).exists()]
    if missing:
        return f"Slurm's packages are not installed (no {', '.join(missing)}): run .ci/run"
    if os.geteuid() != 0:
        return "the test cluster's daemons run as root"
    if any((ETC / name).exists() and not (ETC / name).is_symlink() for name in LINKED):
        return f"{ETC} holds a real cluster's configuration; not touching it"
    return ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _binary(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


class SlurmCluster:
    """Start with `start()`, stop with `stop()`; `env` is what clients (sbatch, snakemake)
    need beside the /etc/slurm links."""

    def __init__(self, root: Path, gpus: bool = True, accounting: bool = True,
                 cpus: int | None = None):
        self.root, self.gpus, self.accounting = Path(root), gpus, accounting
        self.cpus = cpus or os.cpu_count() or 1
        self.node = socket.gethostname()
        self.procs: list[subprocess.Popen] = []
        self.env = {**os.environ, "SLURM_CONF": str(self.root / "slurm.conf")}

    # -- configuration -------------------------------------------------------------------
    def _write_configs(self) -> None:
        r = self.root
        for d in ("state", "spool", "db", "log", "run"):
            (r / d).mkdir(parents=True, exist_ok=True)
        # sockets in a short path: a unix socket's path has at most 107 bytes, and slurmdbd
        # cuts MariaDB's to 63 when it reconnects
        self.sockets = Path(tempfile.mkdtemp(prefix="slurm-"))
        self.munge_socket = self.sockets / "munge.sock"
        self.db_socket = self.sockets / "mysqld.sock"
        ports = {"ctld": _free_port(), "d": _free_port(), "dbd": _free_port()}
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20 - 1024
        gres = " Gres=gpu:1" if self.gpus else ""
        accounting = (f"""\
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort={ports['dbd']}
AccountingStoragePass={self.munge_socket}
AccountingStoreFlags=job_comment
{'AccountingStorageTRES=gres/gpu' if self.gpus else ''}
""" if self.accounting else "AccountingStorageType=accounting_storage/none\n")
        (r / "slurm.conf").write_text(f"""\
ClusterName=rosettatest
SlurmctldHost={self.node}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort={ports['ctld']}
SlurmdPort={ports['d']}
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
CredType=cred/munge
StateSaveLocation={r / 'state'}
SlurmdSpoolDir={r / 'spool'}
SlurmctldPidFile={r / 'run' / 'slurmctld.pid'}
SlurmdPidFile={r / 'run' / 'slurmd.pid'}
SlurmctldLogFile={r / 'log' / 'slurmctld.log'}
SlurmdLogFile={r / 'log' / 'slurmd.log'}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
{accounting}SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
KillWait=2
MinJobAge=600
{'GresTypes=gpu' if self.gpus else ''}
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory}{gres} State=UNKNOWN
PartitionName=cpu Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=ALL MaxTime=INFINITE State=UP
""")
        (r / "gres.conf").write_text(f"NodeName={self.node} Name=gpu File=/dev/null\n"
                                     if self.gpus else "")
        dbd = r / "slurmdbd.conf"
        dbd.write_text(f"""\
AuthType=auth/munge
AuthInfo=socket={self.munge_socket}
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort={ports['dbd']}
SlurmUser=root
PidFile={r / 'run' / 'slurmdbd.pid'}
LogFile={r / 'log' / 'slurmdbd.log'}
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
""")
        dbd.chmod(0o600)

    # -- daemons -------------------------------------------------------------------------
    def _spawn(self, name: str, *args: str, env: dict | None = None) -> None:
        log = open(self.root / "log" / f"{name}.out", "ab")  # noqa: SIM115 (kept by Popen)
        proc = subprocess.Popen([_binary(name), *args], stdout=log, stderr=subprocess.STDOUT,
                                env=env or self.env, start_new_session=True)
        self.procs.append(proc)

    def _wait(self, what: str, ready, timeout: float = 60) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if ready():
                return
            if any(proc.poll() is not None for proc in self.procs):  # a daemon ended
                break
            time.sleep(0.2)
        logs = "\n".join(f"--- {p.name}\n{p.read_text()[-1500:]}"
                         for p in sorted((self.root / "log").iterdir()))
        raise RuntimeError(f"the test cluster's {what} did not come up\n{logs}")

    def client(self, *args: str, check: bool = False) -> subprocess.CompletedProcess:
        """Run a Slurm command (sinfo, squeue, scancel, scontrol, sacct) on this cluster."""
        return subprocess.run(list(args), env=self.env, capture_output=True, text=True,
                              check=check, timeout=60)

    def start(self) -> SlurmCluster:
        t0 = time.monotonic()
        self._write_configs()
        r = self.root
        key = r / "munge.key"
        key.write_bytes(os.urandom(128))
        key.chmod(0o600)
        self._spawn("munged", "--foreground", "--force", f"--socket={self.munge_socket}",
                    f"--key-file={key}", f"--pid-file={r / 'run' / 'munged.pid'}",
                    f"--log-file={r / 'log' / 'munged.log'}", f"--seed-file={r / 'munge.seed'}")
        self._wait("munged", self.munge_socket.exists)
        for name in LINKED:
            (ETC / name).unlink(missing_ok=True)
            (ETC / name).symlink_to(r / name)
        if self.accounting:
            self._start_accounting()
        self._spawn("slurmctld", "-D", "-i", "-f", str(r / "slurm.conf"))
        self._spawn("slurmd", "-D", "-f", str(r / "slurm.conf"))
        self._wait("node", lambda: "idle" in self.client(
            "sinfo", "-h", "-N", "-o", "%T").stdout)
        self.startup_seconds = time.monotonic() - t0
        return self

    def _start_accounting(self) -> None:
        """MariaDB on a unix socket and slurmdbd, with the cluster registered."""
        r = self.root
        subprocess.run(["mariadb-install-db", f"--datadir={r / 'db'}", "--user=root",
                        "--auth-root-authentication-method=socket", "--skip-test-db"],
                       check=True, capture_output=True)
        self._spawn("mariadbd", "--no-defaults", f"--datadir={r / 'db'}", "--user=root",
                    f"--socket={self.db_socket}", "--skip-networking",
                    f"--pid-file={r / 'run' / 'mariadb.pid'}",
                    f"--log-error={r / 'log' / 'mariadb.log'}", "--innodb-buffer-pool-size=16M")
        self._wait("MariaDB", self.db_socket.exists)
        # slurmdbd finds MariaDB's socket through libmariadb's MYSQL_UNIX_PORT
        self._spawn("slurmdbd", "-D", env={**self.env, "MYSQL_UNIX_PORT": str(self.db_socket)})
        self._wait("slurmdbd", lambda: self.client("sacctmgr", "-i", "show", "cluster")
                   .returncode == 0)
        self.client("sacctmgr", "-i", "add", "cluster", "rosettatest", check=True)

    def stop(self) -> None:
        """End the daemons in the reverse order of their start, each before the next."""
        for proc in reversed(self.procs):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        shutil.rmtree(self.sockets, ignore_errors=True)
        for name in LINKED:
            link = ETC / name
            if link.is_symlink() and Path(os.readlink(link)).parent == self.root:
                link.unlink()

    def sacct(self, *fields: str) -> list[list[str]]:
        """Rows of `sacct -a -X -P -n -o FIELDS` (one per job, not per step)."""
        out = self.client("sacct", "-a", "-X", "-P", "-n", "-o", ",".join(fields),
                           check=True).stdout
        return [line.split("|") for line in out.splitlines() if line]


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        cluster = SlurmCluster(Path(tmp))
        try:
            cluster.start()
            print(f"started in {cluster.startup_seconds:.1f} s")
            print(cluster.client("sinfo").stdout)
            print(cluster.client("sbatch", "-p", "gpu", "--gpus=1", "-o", f"{tmp}/%j.out",
                                  "--wrap", "echo GPU $CUDA_VISIBLE_DEVICES").stdout)
            for _ in range(30):
                time.sleep(1)
                if (rows := cluster.sacct("JobID", "Partition", "State", "AllocTRES")) and \
                        rows[0][2] == "COMPLETED":
                    break
            print(rows, Path(tmp, "1.out").read_text())
        finally:
            cluster.stop()
