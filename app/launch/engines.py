"""Which engine answers on DOCKER_HOST (Docker or Podman), and what must be asked of it differently.

Podman serves Docker's API (`podman system service`), so the Docker SDK drives both. What
differs, measured with Debian's Podman 4.3 (docs/cluster.md and README, section Podman):

- Rootful Podman raises every container's open-files and process limits to 1048576. That
  needs CAP_SYS_RESOURCE; where the engine lacks it (containers, CI sandboxes) runc fails
  with "error setting rlimit type 7". Docker hands on its own limits; trainbox asks Podman
  for the caller's open-files limit and for as many processes as the pids limit.
- Rootless Podman maps container uid 0 to the invoking user and every other uid to a
  subordinate range, so `--user UID:GID` would write the run's files as a stranger (and
  could not write into the user's folders at all). There, container root *is* the user,
  and it keeps no capabilities (cap_drop ALL, no-new-privileges).
- Rootless Podman's own networks need /dev/net/tun (slirp4netns, pasta), which sandboxes
  and some clusters deny. The host's network needs nothing and grants a rootless container
  nothing its user lacks; servers then listen on the address and port asked for, instead
  of being published.
- Rootless Podman on cgroup v1 cannot limit CPU, memory or processes and ignores such limits
  without an error: a `--cpus 1` run would train with another thread count (other weights)
  without a word, so those options are refused.
- Podman 4's Docker API drops GPU requests (DeviceRequests) without an error: refused too.
- Podman 4 never sets State.OOMKilled (fixed in Podman 5): exit 137 under a memory limit is
  then reported as a probable out-of-memory kill.
- Podman names images `localhost/NAME:TAG` (loaded) or `docker.io/library/NAME:TAG` (built
  through its API); trainbox compares tags as Docker spells them.
"""

from __future__ import annotations

import functools
import resource
from dataclasses import dataclass

import docker.types

from app.launch.engine import client
from app.launch.errors import UsageError

PODMAN_COMPONENT = "Podman Engine"  # /version's first component on Podman; Docker says "Engine"
PODMAN_REPORTS_OOM_FROM = 5
REGISTRY_PREFIXES = ("localhost/", "docker.io/library/")


@dataclass(frozen=True)
class Engine:
    is_podman: bool
    version: str
    api_version: str
    rootless: bool
    cgroup_version: str  # "1", "2", or "" when the engine does not say

    @property
    def name(self) -> str:
        return "Podman" if self.is_podman else "Docker Engine"

    @property
    def major(self) -> int:
        head = self.version.split(".")[0]
        return int(head) if head.isdigit() else 0

    def describe(self) -> str:
        """'Podman 4.3.1 (rootless, API 1.41)': what `invoke doctor` prints."""
        mode = "rootless" if self.rootless else "rootful"
        return f"{self.name} {self.version} ({mode}, API {self.api_version})"

    @property
    def can_limit_resources(self) -> bool:
        return not (self.is_podman and self.rootless and self.cgroup_version == "1")

    @property
    def shares_host_network(self) -> bool:
        """Containers without a network of their own use the host's (rootless Podman)."""
        return self.is_podman and self.rootless


def detect(version: dict, info: dict) -> Engine:
    """The engine from its /version and /info answers (pure: tests feed recorded answers)."""
    components = {component.get("Name") for component in version.get("Components") or []}
    security = info.get("SecurityOptions") or []
    # Docker says rootless in SecurityOptions; Podman's /info has a key of its own.
    rootless = bool(info.get("Rootless")) or any("name=rootless" in option for option in security)
    return Engine(
        is_podman=PODMAN_COMPONENT in components,
        version=str(version.get("Version", "?")),
        api_version=str(version.get("ApiVersion", "?")),
        rootless=rootless,
        cgroup_version=str(info.get("CgroupVersion") or ""),
    )


@functools.cache
def current() -> Engine:
    """The engine DOCKER_HOST names, asked once per process."""
    return detect(client().version(), client().info())


def refuse_unsupported(engine: Engine, gpu: bool, cpus: bool, memory: bool) -> None:
    """A usage error for what `engine` would silently ignore: GPUs, and limits it cannot apply."""
    if gpu and engine.is_podman:
        raise UsageError(
            f"--gpu: {engine.describe()} ignores GPU requests made through its Docker API: "
            "use Docker for --gpu, or `invoke export`'s Slurm script with TRAINBOX_RUNTIME=podman "
            "(it passes --device nvidia.com/gpu=all)"
        )
    asked = [option for option, given in (("--cpus", cpus), ("--memory", memory)) if given]
    if asked and not engine.can_limit_resources:
        raise UsageError(
            f"{' and '.join(asked)}: rootless Podman on cgroup v1 cannot limit a container and would "
            "silently ignore it: drop the option, or use rootful Podman, Docker, or a host with cgroup v2"
        )


def caller_open_files() -> int:
    """The caller's hard open-files limit: an engine on this host can grant that much."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def adapt_run_kwargs(kwargs: dict, engine: Engine, open_files: int | None = None) -> dict:
    """Docker SDK `containers.create` arguments as `engine` must be asked (a new dict)."""
    asked = {key: bool(kwargs.get(key)) for key in ("device_requests", "nano_cpus", "mem_limit")}
    refuse_unsupported(engine, asked["device_requests"], asked["nano_cpus"], asked["mem_limit"])
    if not engine.is_podman:
        return kwargs
    adapted = dict(kwargs)
    if not engine.can_limit_resources:
        for ignored in ("pids_limit", "memswap_limit"):
            adapted.pop(ignored, None)
    if engine.rootless:
        adapted["user"] = "0:0"
        if "network_mode" not in adapted:
            adapted["network_mode"] = "host"
            adapted.pop("ports", None)  # the server binds the host's address itself
    else:
        files = open_files or caller_open_files()
        processes = adapted.get("pids_limit") or files
        adapted["ulimits"] = [
            docker.types.Ulimit(name="nofile", soft=files, hard=files),
            docker.types.Ulimit(name="nproc", soft=processes, hard=processes),
        ]
    return adapted


def server_binding(engine: Engine, listen: str, host_port: int, image_port: int) -> tuple[str, int]:
    """Where a server in the container listens: every address of its own network namespace on
    the image's port (the engine publishes that on listen:host_port), or, on the host's
    network, exactly listen:host_port."""
    if engine.shares_host_network:
        return listen, host_port
    return "0.0.0.0", image_port


def short_tag(tag: str) -> str:
    """A tag as Docker spells it: localhost/trainbox:cpu -> trainbox:cpu."""
    for prefix in REGISTRY_PREFIXES:
        if tag.startswith(prefix):
            return tag.removeprefix(prefix)
    return tag


def oom_killed(engine: Engine, state: dict, memory_limit: str | None) -> str | None:
    """For a container that exited 137 (SIGKILL): 'killed' when the engine says it was killed
    for memory, 'probably' when it ran under a memory limit on an engine that never says
    (Podman 4), else None."""
    if state.get("OOMKilled"):
        return "killed"
    if engine.is_podman and engine.major < PODMAN_REPORTS_OOM_FROM and memory_limit:
        return "probably"
    return None
