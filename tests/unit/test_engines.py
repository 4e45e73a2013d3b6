"""Telling Docker from Podman, adapting a container's arguments, and Podman's failures in one
line (pure: the /version, /info answers and error texts as recorded from Docker 20.10 and
Debian's Podman 4.3 on these machines)."""

from __future__ import annotations

import docker.errors
import docker.types
import pytest
import requests

from app.launch import engines, errors
from app.launch.errors import EXIT_USAGE, UsageError

DOCKER_VERSION = {
    "Platform": {"Name": ""},
    "Components": [{"Name": "Engine"}, {"Name": "containerd"}, {"Name": "runc"}, {"Name": "docker-init"}],
    "Version": "20.10.24+dfsg1",
    "ApiVersion": "1.41",
}
PODMAN_VERSION = {
    "Platform": {"Name": "linux/amd64/debian-12"},
    "Components": [{"Name": "Podman Engine"}, {"Name": "Conmon"}, {"Name": "OCI Runtime (runc)"}],
    "Version": "4.3.1",
    "ApiVersion": "1.41",
}
DOCKER_INFO = {"SecurityOptions": ["name=seccomp,profile=default"], "CgroupVersion": "1"}
ROOTLESS_DOCKER_INFO = {"SecurityOptions": ["name=seccomp,profile=default", "name=rootless"]}
PODMAN_INFO = {"SecurityOptions": ["name=seccomp,profile=default"], "Rootless": False, "CgroupVersion": "1"}
ROOTLESS_PODMAN_INFO = {**PODMAN_INFO, "Rootless": True}

DOCKER = engines.detect(DOCKER_VERSION, DOCKER_INFO)
PODMAN = engines.detect(PODMAN_VERSION, PODMAN_INFO)
ROOTLESS_PODMAN = engines.detect(PODMAN_VERSION, ROOTLESS_PODMAN_INFO)
ROOTLESS_PODMAN_V2 = engines.detect(PODMAN_VERSION, {**ROOTLESS_PODMAN_INFO, "CgroupVersion": "2"})
GPU = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]


def run_kwargs(**extra) -> dict:
    """What containers.run_kwargs returns for a training container (the parts that matter)."""
    return {"user": "1000:1000", "pids_limit": 4096, "shm_size": "1g", "init": True, **extra}


def test_detect_tells_the_engines_and_modes_apart():
    assert (DOCKER.is_podman, DOCKER.rootless) == (False, False)
    assert engines.detect(DOCKER_VERSION, ROOTLESS_DOCKER_INFO).rootless
    assert (PODMAN.is_podman, PODMAN.rootless, PODMAN.major) == (True, False, 4)
    assert ROOTLESS_PODMAN.rootless
    assert ROOTLESS_PODMAN.describe() == "Podman 4.3.1 (rootless, API 1.41)"
    assert DOCKER.describe() == "Docker Engine 20.10.24+dfsg1 (rootful, API 1.41)"


def test_docker_arguments_pass_unchanged():
    kwargs = run_kwargs(nano_cpus=10**9, ports={"8888/tcp": ("127.0.0.1", 8888)}, device_requests=GPU)
    assert engines.adapt_run_kwargs(kwargs, DOCKER) == kwargs


def test_rootful_podman_gets_limits_it_can_grant():
    adapted = engines.adapt_run_kwargs(run_kwargs(), PODMAN, open_files=20000)
    limits = {limit.name: (limit.soft, limit.hard) for limit in adapted["ulimits"]}
    assert limits == {"nofile": (20000, 20000), "nproc": (4096, 4096)}
    assert adapted["user"] == "1000:1000" and adapted["pids_limit"] == 4096
    assert "network_mode" not in adapted  # its own network, ports published by the engine


def test_rootless_podman_runs_as_container_root_on_the_host_network():
    kwargs = run_kwargs(ports={"8888/tcp": ("127.0.0.1", 8890)})
    adapted = engines.adapt_run_kwargs(kwargs, ROOTLESS_PODMAN)
    assert adapted["user"] == "0:0"  # mapped to the invoking user
    assert adapted["network_mode"] == "host"
    assert "ports" not in adapted and "ulimits" not in adapted
    assert "pids_limit" not in adapted  # cgroup v1 rootless: ignored anyway, so not asked
    assert kwargs["user"] == "1000:1000"  # the caller's dict is left alone
    assert engines.adapt_run_kwargs(run_kwargs(), ROOTLESS_PODMAN_V2)["pids_limit"] == 4096


def test_a_group_member_keeps_its_namespace_on_every_engine():
    for engine in (DOCKER, PODMAN, ROOTLESS_PODMAN):
        for mode in ("none", "container:trainbox-train-r1-w0"):
            assert engines.adapt_run_kwargs(run_kwargs(network_mode=mode), engine)["network_mode"] == mode


@pytest.mark.parametrize("asked", [{"nano_cpus": 10**9}, {"mem_limit": "4g", "memswap_limit": "4g"}])
def test_rootless_podman_on_cgroup_v1_refuses_limits_it_would_ignore(asked):
    with pytest.raises(UsageError, match="rootless Podman on cgroup v1 cannot limit") as refused:
        engines.adapt_run_kwargs(run_kwargs(**asked), ROOTLESS_PODMAN)
    assert refused.value.exit_code == EXIT_USAGE
    assert engines.adapt_run_kwargs(run_kwargs(**asked), ROOTLESS_PODMAN_V2)["user"] == "0:0"
    assert engines.adapt_run_kwargs(run_kwargs(**asked), PODMAN, open_files=1024)


def test_podman_refuses_gpu_requests_it_would_ignore():
    for engine in (PODMAN, ROOTLESS_PODMAN):
        with pytest.raises(UsageError, match=r"--gpu: Podman 4\.3\.1 .* ignores GPU requests"):
            engines.adapt_run_kwargs(run_kwargs(device_requests=GPU), engine)
    engines.refuse_unsupported(DOCKER, gpu=True, cpus=True, memory=True)


def test_server_binding_follows_the_network():
    assert engines.server_binding(DOCKER, "127.0.0.1", 8890, 8888) == ("0.0.0.0", 8888)
    assert engines.server_binding(PODMAN, "127.0.0.1", 8890, 8888) == ("0.0.0.0", 8888)
    assert engines.server_binding(ROOTLESS_PODMAN, "127.0.0.1", 8890, 8888) == ("127.0.0.1", 8890)


def test_short_tag_drops_podmans_registry_prefixes():
    assert engines.short_tag("localhost/trainbox:cpu") == "trainbox:cpu"
    assert engines.short_tag("docker.io/library/trainbox:cpu") == "trainbox:cpu"
    assert engines.short_tag("registry.example.org/trainbox:cpu") == "registry.example.org/trainbox:cpu"


def test_an_oom_kill_on_podman_4_is_inferred_from_exit_137_under_a_limit():
    killed = {"OOMKilled": False, "ExitCode": 137}
    assert engines.oom_killed(PODMAN, killed, "512m") == "probably"
    assert engines.oom_killed(PODMAN, killed, None) is None
    assert engines.oom_killed(DOCKER, killed, "512m") is None
    assert engines.oom_killed(DOCKER, {"OOMKilled": True, "ExitCode": 137}, "512m") == "killed"
    podman_5 = engines.detect({**PODMAN_VERSION, "Version": "5.0.2"}, PODMAN_INFO)
    assert engines.oom_killed(podman_5, killed, "512m") is None  # Podman 5 says it itself


def api_error(explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = 500
    return docker.errors.APIError("engine said no", response=response, explanation=explanation)


PODMAN_FAILURES = {
    "no catatonit": (
        "container create: container-init binary not found on the host: stat "
        "/usr/libexec/podman/catatonit: no such file or directory",
        "sudo apt-get install catatonit",
    ),
    "rlimits": (
        "runc: runc create failed: unable to start container process: error during container init: "
        "error setting rlimits for ready process: error setting rlimit type 7: operation not permitted: "
        "OCI permission denied",
        "open-files limit",
    ),
    "busy port": (
        "cannot listen on the TCP port: listen tcp4 127.0.0.1:50001: bind: address already in use",
        "the port is already in use",
    ),
}


@pytest.mark.parametrize("case", PODMAN_FAILURES)
def test_podmans_failures_end_in_one_line(case):
    text, fragment = PODMAN_FAILURES[case]
    translated = str(errors.translate(api_error(text)))
    assert fragment in translated and "\n" not in translated


def test_an_unreachable_engine_names_the_address_the_user_chose(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///run/podman/podman.sock")
    refused = requests.exceptions.ConnectionError("refused")
    assert str(errors.translate(refused)) == (
        "cannot reach the Docker daemon at unix:///run/podman/podman.sock (DOCKER_HOST): is it running? "
        "For Podman, start its API service: podman system service --time=0 unix:///run/podman/podman.sock &"
    )
    monkeypatch.delenv("DOCKER_HOST")
    assert "(check with `docker info`)" in str(errors.translate(refused))
