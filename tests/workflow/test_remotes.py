"""Sharing through real DVC remotes: an S3 server (SeaweedFS) and an SSH server (sshd), both on
loopback and started by these tests (tests/remote_servers.py). You record the tiny project's
results and push them; a colleague clones, pulls only what mining the shapes dictionary took
(the stages `dvc_stages.py --mining shapes` names, with their dependencies), sets another k and
rebuilds with Snakemake and with `dvc exp run`: no training, sampling, matching or reducing
runs, and the results are your own rebuild's bytes. Then the faults: a push cut off by the
server, an object corrupted on the remote, wrong credentials and an unreachable server."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from remote_servers import (
    ACCESS_KEY,
    BUCKET,
    SECRET_KEY,
    S3Server,
    SSHServer,
    free_port,
    require,
)
from workflow_project import (
    BIN,
    DISCS,
    ROOT,
    dvc_stages,
    env,
    files,
    job_counts,
    make_project,
    sh,
    snakemake,
    tiny_params,
    write_params,
)

pytestmark = pytest.mark.slow  # two servers, a push and pulls of the tiny project, rebuilds

DVC_FILES = [".gitignore", ".dvc/config", ".dvc/.gitignore", ".dvc/plots/grouped_bars.json"]
TARGETS = ("results/dictionary/shapes.html", "results/metrics/discovery/shapes.json")
REBUILT = ("bestbuddies/", "bestbuddies-null/", "stability/", "rosetta/", "dictionary/",
           "metrics/discovery/", "plots/discovery/")  # what TARGETS rebuild after a new k
MINING = {"train", "dissect", "sample", "match", "reduce"}
QUICK = {"AWS_MAX_ATTEMPTS": "1"}  # botocore's retries of a refused connection, which take 5 s


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


def errors(proc: subprocess.CompletedProcess) -> list[str]:
    """The lines DVC shows as errors (the SSH plugin's deprecation warnings left out)."""
    return [line for line in proc.stderr.splitlines() if line.startswith("ERROR")]


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def ssh(tmp_path_factory):
    server = SSHServer(tmp_path_factory.mktemp("ssh"))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mined(built, s3, ssh, tmp_path_factory) -> Path:
    """Your clone: the tiny project's results recorded in dvc.lock (the sharing guide's
    steps), remotes `lab` (S3, the default) and `lab-ssh`, committed to `origin.git` and pushed
    to both remotes."""
    tmp = tmp_path_factory.mktemp("mined")
    project = make_project(tmp / "yours", tiny_params(DISCS))
    shutil.copytree(built / "results", project / "results")
    for name in DVC_FILES:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, project / name)
    (project / "dvc.yaml").write_text(dvc_stages.dvc_yaml(dvc_stages.snakemake_jobs(project)))
    snakemake(project, "--touch")
    git(project, "init", "-q", "-b", "main")
    git(project, "config", "user.name", "You")
    git(project, "config", "user.email", "you@example.org")
    s3.add_remote(project, "lab")
    ssh.add_remote(project, "lab-ssh", default=False)
    sh(project, "dvc", "repro", "-q", dvc_stages.CHECK_STAGE)
    assert "not built or out of date: none" in sh(
        project, "python", "workflow/scripts/dvc_stages.py", "--commit").stdout
    snakemake(project, "--touch")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "The tiny project's results")
    sh(project, "dvc", "push", "-q")
    sh(project, "dvc", "push", "-q", "-r", "lab-ssh")
    git(tmp, "init", "-q", "--bare", "-b", "main", "origin.git")
    git(project, "push", "-q", str(tmp / "origin.git"), "main")
    return project


def clone(mined: Path, path: Path) -> Path:
    git(path.parent, "clone", "-q", str(mined.parent / "origin.git"), path.name)
    git(path, "config", "user.name", "Colleague")
    git(path, "config", "user.email", "colleague@example.org")
    return path


@pytest.fixture(scope="module")
def mining(mined) -> list[str]:
    """The last stage that mines the shapes dictionary (its inventory), as the guide's command
    prints it for `dvc pull --with-deps`."""
    return sh(mined, "python", "workflow/scripts/dvc_stages.py", "--mining",
              "shapes").stdout.split()


def mining_outputs(project: Path) -> set[str]:
    """Every output of the stages that mine the shapes dictionary (its inventory and all
    upstream of it), and DVC's first stage's."""
    jobs = dvc_stages.snakemake_jobs(project)
    stages = set(dvc_stages.mining_stages(jobs, "shapes"))
    return {o for j in jobs if j["name"] in stages for o in j["outs"]} | {dvc_stages.CHECK_STAMP}


def set_k(project: Path, k: int) -> None:
    params = yaml.safe_load((project / "params.yaml").read_text())
    write_params(project, {**params, "k": k})


def rebuilt(project: Path) -> dict[str, bytes]:
    return {name: data for name, data in files(project / "results").items()
            if name.startswith(REBUILT)}


@pytest.fixture(scope="module")
def yours_at_k4(mined, tmp_path_factory) -> dict[str, bytes]:
    """What the mining machine itself gets for k = 4."""
    project = tmp_path_factory.mktemp("k4") / "yours"
    shutil.copytree(mined, project, symlinks=True)
    set_k(project, 4)
    snakemake(project, *TARGETS)
    return rebuilt(project)


def test_the_set_up_leaves_no_credential_in_git(mined, ssh):
    secrets = [ACCESS_KEY, SECRET_KEY, str(ssh.keyfile)]
    assert git(mined, "status", "--porcelain") == ""
    tracked = git(mined, "log", "-p", "--all") + "".join(
        (mined / name).read_text(errors="replace") for name in git(mined, "ls-files").split())
    assert not [s for s in secrets if s in tracked]
    local = (mined / ".dvc/config.local").read_text()
    assert all(s in local for s in secrets)
    assert git(mined, "check-ignore", ".dvc/config.local").strip() == ".dvc/config.local"


def test_a_colleague_pulls_the_mining_and_rebuilds_with_another_k(mined, s3, mining,
                                                                   yours_at_k4, tmp_path):
    colleague = clone(mined, tmp_path / "colleague")
    s3.credentials(colleague, "lab")
    stages = mining
    assert stages == ["inventory--shapes"]
    sh(colleague, "dvc", "pull", "-q", "--with-deps", *stages)
    pulled = files(colleague / "results")
    outs = mining_outputs(mined)  # every mining output pulled, and nothing else
    assert {next((o for o in outs if f"results/{name}" == o
                  or f"results/{name}".startswith(f"{o}/")), name) for name in pulled} == outs
    assert {name.split("/")[0] for name in pulled} == {
        "dissection", "match", "samples", "zoo", "metrics", Path(dvc_stages.CHECK_STAMP).name}
    assert {name for name in pulled if name.startswith("metrics/")} == {
        "metrics/inventory/shapes.json"}
    assert pulled == {name: data for name, data in files(mined / "results").items()
                      if name in pulled}
    snakemake(colleague, "--touch")
    set_k(colleague, 4)
    planned = job_counts(colleague, *TARGETS)
    assert planned and not [rule for rule in planned if rule.split("_")[0] in MINING]
    snakemake(colleague, *TARGETS)
    assert rebuilt(colleague) == yours_at_k4
    assert rebuilt(colleague) != rebuilt(mined)  # k = 4 changed the concepts

    # The same through DVC: an experiment that sets k, skipping the stages whose data was
    # not pulled (the guide's `dvc exp run --allow-missing`)
    other = clone(mined, tmp_path / "other")
    s3.credentials(other, "lab")
    sh(other, "dvc", "pull", "-q", "--with-deps", *stages)
    out = sh(other, "dvc", "exp", "run", "-S", "k=4", "--allow-missing",
             "dictionary--shapes", "discovery--shapes").stdout
    ran = {name.split("--")[0] for name in re.findall(r"^Running stage '([^']+)'", out, re.M)}
    assert ran == {dvc_stages.CHECK_STAGE.split("--")[0], "bestbuddies", "stability",
                   "rosetta", "dictionary", "discovery"}, out
    assert rebuilt(other) == yours_at_k4

    # bb_fdr reaches no command as ${bb_fdr}: its option is in the stage or not
    stale = sh(other, "dvc", "exp", "run", "-S", "bb_fdr=0.05", "--allow-missing",
               "dictionary--shapes", check=False)
    assert stale.returncode != 0 and "dvc.yaml is stale: " in stale.stderr


def test_the_ssh_remote_serves_the_same_bytes(mined, ssh, mining, tmp_path):
    """DVC's SSH remote does not check the server's host key (sshfs passes asyncssh no
    known_hosts): this server's key is in no known_hosts file, and nothing asks for it."""
    colleague = clone(mined, tmp_path / "colleague")
    ssh.credentials(colleague, "lab-ssh")
    sh(colleague, "dvc", "pull", "-q", "-r", "lab-ssh", "--with-deps", *mining)
    pulled = files(colleague / "results")
    assert pulled and pulled == {n: d for n, d in files(mined / "results").items()
                                 if n in pulled}


def object_keys_are_hashes(objects: dict[str, bytes]) -> list[str]:
    """The objects whose bytes are not what their key (files/md5/ab/cdef...) says."""
    bad = []
    for key, data in objects.items():
        digest = "".join(key.split("/")[-2:]).removesuffix(".dir")
        if hashlib.md5(data).hexdigest() != digest:
            bad.append(key)
    return bad


def test_a_push_cut_off_by_the_server_is_completed_by_the_next(mined, s3, tmp_path):
    s3.add_remote(mined, "cut", prefix="cut", default=False)
    push = subprocess.Popen([str(BIN / "dvc"), "push", "-r", "cut", "-j", "1"], cwd=mined,
                            env=env(**QUICK), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    end = time.monotonic() + 60
    while len(s3.keys("cut/")) < 20 and push.poll() is None and time.monotonic() < end:
        time.sleep(0.1)
    s3.stop()
    _, stderr = push.communicate(timeout=120)
    s3.start()
    assert push.returncode != 0, "the push ended before the server stopped"
    # a line per object on its way (the cause: the refused connection, or the gateway's
    # InternalError when its volume server went first), then the one that stopped the push
    shown = [line for line in stderr.splitlines() if line.startswith("ERROR")]
    assert shown and all(re.match(r"ERROR: (failed to transfer '\w+'|unexpected error) - ", line)
                         for line in shown), stderr
    half = s3.objects("cut/")
    assert half and not object_keys_are_hashes(half)  # whole objects only, or none

    sh(mined, "dvc", "push", "-q", "-r", "cut")
    whole = s3.objects("cut/")
    assert len(whole) > len(half) and not object_keys_are_hashes(whole)
    assert whole.keys() == {k.replace("dvc/", "cut/", 1) for k in s3.objects("dvc/")}


def test_a_corrupted_object_on_the_remote_is_refused_by_the_pull(mined, s3, tmp_path):
    """`verify = true` (committed with the remote, as the guide says) makes DVC hash what it
    downloads: a corrupted object fails the pull and stays out of the cache and the
    workspace. Without it, DVC would check out the corrupted bytes."""
    store = "results/match/shapes-gan/all/shapes-cnn-sup/matches.zarr"
    stage = "reduce--shapes-gan--all--shapes-cnn-sup"
    s3.add_remote(mined, "bad", prefix="bad", default=False)
    sh(mined, "dvc", "push", "-q", "-r", "bad", stage)
    listing = next(o for o in yaml.safe_load((mined / "dvc.lock").read_text())["stages"][stage]
                   ["outs"] if o["path"] == store)["md5"]
    entries = json.loads((mined / ".dvc/cache/files/md5" / listing[:2] / listing[2:])
                         .read_text())
    entry = max(entries, key=lambda e: (mined / store / e["relpath"]).stat().st_size)
    key = f"bad/files/md5/{entry['md5'][:2]}/{entry['md5'][2:]}"
    good = s3.objects(key)[key]
    s3.client().put_object(Bucket=BUCKET, Key=key, Body=bytes(b ^ 1 for b in good))

    colleague = clone(mined, tmp_path / "colleague")
    s3.add_remote(colleague, "bad", prefix="bad", default=False)
    refused = sh(colleague, "dvc", "pull", "-r", "bad", stage, check=False)
    assert refused.returncode != 0
    assert errors(refused)[0].startswith("ERROR: failed to pull data from the cloud")
    assert not (colleague / store / entry["relpath"]).exists()
    cached = colleague / ".dvc/cache/files/md5" / entry["md5"][:2] / entry["md5"][2:]
    assert not cached.exists()

    sh(colleague, "dvc", "remote", "modify", "--local", "bad", "verify", "false")
    sh(colleague, "dvc", "pull", "-q", "-r", "bad", stage)  # what DVC does by default
    assert (colleague / store / entry["relpath"]).read_bytes() != good


@pytest.mark.parametrize("remote, mistake, lines", [
    ("lab", ("secret_access_key", "wrong"),
     [f"ERROR: failed to connect to s3 ({BUCKET}/dvc/files/md5) - Forbidden: ",
      "ERROR: failed to pull data from the cloud - "]),
    ("lab", ("endpointurl", "http://127.0.0.1:{port}"),
     [f"ERROR: failed to connect to s3 ({BUCKET}/dvc/files/md5) - Could not connect to the "
      f"endpoint URL: \"http://127.0.0.1:{{port}}/{BUCKET}/dvc/files/md5\"",
      "ERROR: failed to pull data from the cloud - "]),
    ("lab-ssh", ("keyfile", "{other_key}"),
     ["ERROR: failed to connect to ssh ({store}/files/md5) - Permission denied for user ",
      "ERROR: failed to pull data from the cloud - "]),
    ("lab-ssh", ("url", "ssh://127.0.0.1:{port}{store}"),
     ["ERROR: failed to connect to ssh ({store}/files/md5) - [Errno 111] Connect call failed "
      "('127.0.0.1', {port})", "ERROR: failed to pull data from the cloud - "]),
], ids=["s3-credentials", "s3-unreachable", "ssh-key", "ssh-unreachable"])
def test_a_wrong_credential_or_address_is_named_in_the_error(mined, s3, ssh, tmp_path, remote,
                                                             mistake, lines):
    colleague = clone(mined, tmp_path / "colleague")
    (s3 if remote == "lab" else ssh).credentials(colleague, remote)
    other_key = tmp_path / "other_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(other_key)],
                   check=True)
    values = {"port": free_port(), "other_key": other_key, "store": ssh.store}
    option, value = mistake
    sh(colleague, "dvc", "remote", "modify", "--local", remote, option, value.format(**values))
    out = sh(colleague, "dvc", "pull", "-r", remote, "rosetta--shapes", check=False,
             extra_env=QUICK)
    assert out.returncode != 0 and "Traceback" not in out.stderr
    shown = errors(out)
    assert len(shown) == len(lines)
    for line, start in zip(shown, lines, strict=True):
        assert line.startswith(start.format(**values)), shown


def test_a_missing_server_skips_here_and_fails_in_ci(tmp_path, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="SeaweedFS is not installed"):
        require(tmp_path / "weed", "SeaweedFS")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI must run the remote tests"):
        require(tmp_path / "weed", "SeaweedFS")


def test_the_servers_leave_nothing_running(tmp_path):
    s3, ssh = S3Server(tmp_path / "s3").start(), SSHServer(tmp_path / "ssh").start()
    ports = [*s3.ports.values(), ssh.port]
    s3.stop()
    ssh.stop()
    assert s3.proc.poll() is not None and ssh.proc.poll() is not None
    for port in ports:
        with socket.socket() as sock:
            assert sock.connect_ex(("127.0.0.1", port)) != 0, port
    assert not [p for p in Path("/tmp").glob("seaweedfs-*-grpc-*.sock")
                if int(p.stem.rsplit("-", 1)[1]) in ports]
