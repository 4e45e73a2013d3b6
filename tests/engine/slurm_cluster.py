"""A throwaway single-node Slurm cluster on this machine (Debian slurm-wlm + munge), for tests.

Root is needed (munged, slurmd). Plugins that need cgroups are avoided (proctrack/linuxproc,
task/none, no accounting), so it runs inside containers and VMs without a systemd cgroup tree.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MUNGE_SOCKET_DIR = Path("/run/munge")


def missing_tools() -> list[str]:
    tools = ("munged", "slurmctld", "slurmd", "sbatch", "scontrol")
    return [tool for tool in tools if not shutil.which(tool)]


def slurm_conf(state: Path, host: str, cpus: int, port_base: int) -> str:
    return f"""\
ClusterName=trainboxtest
SlurmctldHost={host}
SlurmUser=root
SlurmctldPort={port_base}
SlurmdPort={port_base + 1}
AuthType=auth/munge
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/spool
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
NodeName={host} CPUs={cpus} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


class SlurmCluster:
    def __init__(self, state: Path, port_base: int = 16817) -> None:
        self.state = state
        self.host = socket.gethostname().split(".")[0]
        self.conf = state / "slurm.conf"
        self.env = {**os.environ, "SLURM_CONF": str(self.conf)}
        self.processes: list[subprocess.Popen] = []
        self.port_base = port_base
        self.started_munged = False

    def start(self) -> None:
        for sub in ("ctld", "spool"):
            (self.state / sub).mkdir(parents=True, exist_ok=True)
        self.conf.write_text(slurm_conf(self.state, self.host, os.cpu_count() or 1, self.port_base))
        self._start_munged()
        # -D: foreground, so the test owns the processes and ends them by pid.
        self.processes.append(self._spawn(["slurmctld", "-D", "-i", "-f", str(self.conf)], "slurmctld"))
        self.processes.append(self._spawn(["slurmd", "-D", "-f", str(self.conf)], "slurmd"))
        self._wait_for_idle_node()

    def _spawn(self, command: list[str], name: str) -> subprocess.Popen:
        log = open(self.state / f"{name}.stdout", "wb")  # noqa: SIM115 - closed with the process
        return subprocess.Popen(command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def _start_munged(self) -> None:
        if (MUNGE_SOCKET_DIR / "munge.socket.2").exists():
            probe = subprocess.run(["munge", "-n"], capture_output=True)
            if probe.returncode == 0:
                return  # a munged is already running: share it
        MUNGE_SOCKET_DIR.mkdir(parents=True, exist_ok=True)
        shutil.chown(MUNGE_SOCKET_DIR, "munge", "munge")
        subprocess.run(["runuser", "-u", "munge", "--", "munged"], check=True)
        self.started_munged = True

    def _wait_for_idle_node(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            for process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{process.args[0]} exited {process.returncode}: {self.logs()}")
            result = subprocess.run(["sinfo", "-h", "-o", "%T"], env=self.env, capture_output=True, text=True)
            last = result.stdout.strip() + result.stderr.strip()
            if result.returncode == 0 and "idle" in last:
                return
            time.sleep(1)
        raise RuntimeError(f"the node did not become idle ({last}): {self.logs()}")

    def logs(self) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log", "slurmctld.stdout", "slurmd.stdout"):
            path = self.state / name
            if path.exists():
                parts.append(f"--- {name}\n" + path.read_text(errors="replace")[-2500:])
        return "\n".join(parts)

    def sbatch(
        self, script: Path, *args: str, cwd: Path, env: dict | None = None, options: list[str] | None = None
    ) -> str:
        result = subprocess.run(
            ["sbatch", "--parsable", *(options or []), str(script), *args],
            cwd=cwd,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            check=True,
        )
        return result.stdout.strip().split(";")[0]

    def wait(self, job_id: str, timeout: float = 1200) -> str:
        """Poll until the job leaves the queue; its final state from scontrol."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = subprocess.run(
                ["scontrol", "show", "job", job_id], env=self.env, capture_output=True, text=True
            )
            state = next((f.split("=", 1)[1] for f in result.stdout.split() if f.startswith("JobState=")), "")
            if state and state not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING"):
                return state
            time.sleep(2)
        raise TimeoutError(f"job {job_id} still running after {timeout} s")

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.started_munged:
            pid_file = Path("/run/munge/munged.pid")
            if pid_file.exists():
                subprocess.run(["kill", pid_file.read_text().strip()], check=False)


@contextlib.contextmanager
def running_cluster(state: Path, port_base: int = 16817) -> Iterator[SlurmCluster]:
    """A started cluster for the block, stopped at its end; one that does not start fails the test."""
    cluster = SlurmCluster(state, port_base)
    try:
        cluster.start()
    except RuntimeError as error:
        cluster.stop()
        pytest.fail(f"the single-node Slurm cluster did not start: {error}")
    try:
        yield cluster
    finally:
        cluster.stop()
