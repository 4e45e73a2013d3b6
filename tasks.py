"""trainbox tasks: `invoke --list` shows them all. Logic lives in app/launch/."""

from __future__ import annotations

from invoke import Collection, Exit, task

from app.launch.errors import TrainboxError


def _run(action, *args, **kwargs):
    """Call host-side logic; user mistakes end in one line and a non-zero exit."""
    try:
        return action(*args, **kwargs)
    except TrainboxError as error:
        raise Exit(f"trainbox: {error}", code=error.exit_code) from None


def _count(value, option: str) -> int:
    if not str(value).isdigit() or int(value) < 1:
        raise Exit(f"trainbox: {option} {value}: give a whole number of 1 or more, e.g. {option} 2", code=2)
    return int(value)


def _exit_with(status: int) -> None:
    if status != 0:
        raise Exit(code=status)


@task(help={
    "gpu": "build trainbox:gpu (tensorflow[and-cuda]) instead of trainbox:cpu",
    "tag": "tag the image differently from trainbox:cpu / trainbox:gpu",
    "base_image": "base image (default trainbox-base:bookworm, made locally when missing)",
    "ca_bundle": "extra CA bundle (PEM) for pip in the build; default: $TRAINBOX_CA_BUNDLE or pip's",
    "no_cache": "rebuild every layer",
})
def build(c, gpu=False, tag=None, base_image=None, ca_bundle=None, no_cache=False):
    """Build the CPU (default) or GPU image, streaming progress."""
    from app.launch.base import DEFAULT_BASE_IMAGE
    from app.launch.images import BuildRequest, build_image

    request = BuildRequest(
        variant="gpu" if gpu else "cpu", tag=tag, base_image=base_image or DEFAULT_BASE_IMAGE,
        ca_bundle=ca_bundle, no_cache=no_cache,
    )
    _run(build_image, request)


@task(help={"name": "tag of the base image to make (default trainbox-base:bookworm)"})
def base(c, name=None):
    """Make the Debian base image locally (debootstrap + import) when no registry is reachable."""
    from app.launch.base import DEFAULT_BASE_IMAGE, make_base_image

    _run(make_base_image, name or DEFAULT_BASE_IMAGE)


@task(help={"data_dir": "where to write it (default: data/ in the repository)", "gpu": "use the GPU image"})
def data(c, data_dir=None, gpu=False):
    """Write the bundled default dataset (handwritten digits as PNG folders) into the data directory."""
    from app.launch.training import DEFAULT_DATA_DIR, prepare_data, resolve_dir

    _run(prepare_data, resolve_dir(data_dir, DEFAULT_DATA_DIR), gpu=gpu)


@task(
    iterable=["set_"],
    help={
        "config": "experiment YAML (default: configs/default.yaml)",
        "set_": "override one key, e.g. --set training.epochs=3 (repeatable)",
        "gpu": "train in trainbox:gpu with all GPUs requested",
        "resume": "continue the interrupted run RUN_ID in its own directory",
        "data_dir": "data directory, mounted read-only (default: data/)",
        "output_dir": "where run directories go (default: outputs/)",
        "image": "run another image tag than trainbox:cpu / trainbox:gpu",
        "cpus": "CPU limit for the container, e.g. 1.5",
        "memory": "memory limit for the container, e.g. 4g",
        "shm_size": "shared memory size (default 1g)",
        "workers": "N > 1: N containers with MultiWorkerMirroredStrategy (global batch = batch x N)",
    },
)
def train(c, config=None, set_=None, gpu=False, resume=None, data_dir=None, output_dir=None,
          image=None, cpus=None, memory=None, shm_size="1g", workers=None):
    """Train in a container (building the image and writing the default data first if missing)."""
    from app.launch.containers import Limits
    from app.launch.training import TrainRequest
    from app.launch.training import train as run_training

    request = TrainRequest(
        config_file=config, overrides=tuple(set_ or ()), gpu=gpu, resume=resume,
        data_dir=data_dir, output_dir=output_dir, image=image,
        limits=Limits(cpus=float(cpus) if cpus else None, memory=memory, shm_size=shm_size),
        workers=_count(workers, "--workers") if workers else None,
    )
    _exit_with(_run(run_training, request))


@task(help={
    "run_id": "the completed run to re-run (a folder name under the output directory)",
    "output_dir": "where the run is and the re-run goes (default: outputs/)",
    "data_dir": "data directory, mounted read-only (default: data/)",
})
def reproduce(c, run_id, output_dir=None, data_dir=None):
    """Re-run a recorded run in its image and code; exit 0 only when the results are identical."""
    from app.launch.reproduce import ReproduceRequest
    from app.launch.reproduce import reproduce as run_reproduce

    request = ReproduceRequest(run_id=run_id, output_dir=output_dir, data_dir=data_dir)
    _exit_with(_run(run_reproduce, request))


@task(help={"pytest_args": "extra arguments for pytest, e.g. '-k config -x'",
            "host_only": "skip the tests that run inside the image",
            "image_only": "run only the tests inside the image"})
def test(c, pytest_args="", host_only=False, image_only=False):
    """Run the whole test suite: host side (unit + real engine) and inside the CPU image."""
    import shlex

    from app.launch.testing import run_host_tests, run_image_tests

    args = shlex.split(pytest_args)
    statuses = []
    if not image_only:
        statuses.append(run_host_tests(args))
    if not host_only:
        statuses.append(_run(run_image_tests, args))
    _exit_with(next((status for status in statuses if status != 0), 0))


@task
def lock(c):
    """Regenerate requirements/{cpu,gpu}.lock (with hashes) from the .in files, using uv."""
    from app.launch.locks import lock_all

    _run(lock_all)


@task(help={
    "port": "host port (default 8888, or the next free one; an explicit busy port is an error)",
    "gpu": "use trainbox:gpu and request the GPUs",
    "listen": "host address to publish on (default 127.0.0.1; anything else is reachable by others)",
    "data_dir": "data directory, mounted read-only at /data (default data/)",
    "output_dir": "output directory, mounted at /outputs (default outputs/)",
    "notebook_dir": "folder Jupyter opens and saves into (default the repository's notebooks/)",
})
def notebook(c, port=None, gpu=False, listen="127.0.0.1", data_dir=None, output_dir=None, notebook_dir=None):
    """JupyterLab in the image on 127.0.0.1 with a fresh token; Ctrl-C stops and removes it."""
    from app.launch.services import ServiceRequest
    from app.launch.services import notebook as run_notebook

    request = ServiceRequest(port=int(port) if port else None, gpu=gpu, listen=listen,
                             data_dir=data_dir, output_dir=output_dir, notebook_dir=notebook_dir)
    _exit_with(_run(run_notebook, request))


@task(help={
    "port": "host port (default 6006, or the next free one; an explicit busy port is an error)",
    "listen": "host address to publish on (default 127.0.0.1; anything else is reachable by others)",
    "output_dir": "output directory whose runs are shown (default outputs/)",
})
def tensorboard(c, port=None, listen="127.0.0.1", output_dir=None):
    """TensorBoard over the output directory on 127.0.0.1; Ctrl-C stops and removes it."""
    from app.launch.services import ServiceRequest
    from app.launch.services import tensorboard as run_tensorboard

    request = ServiceRequest(port=int(port) if port else None, listen=listen, output_dir=output_dir)
    _exit_with(_run(run_tensorboard, request))


@task
def doctor(c):
    """Check the host: Docker daemon, disk, images, base image, CA/proxy, NVIDIA runtime and GPUs."""
    from app.launch.doctor import doctor as run_doctor

    _exit_with(_run(run_doctor))


@task(help={"images": "also remove the trainbox:* images and dangling images (the base image is kept)"})
def clean(c, images=False):
    """Remove the project's containers, networks and volumes (label trainbox.project=trainbox)."""
    from app.launch.clean import clean as run_clean

    _run(run_clean, images=images)


@task(help={
    "gpu": "export trainbox:gpu instead of trainbox:cpu",
    "output_dir": "where the tarball, .def and .sbatch go (default: export/ in the repository)",
    "image": "export another tag than trainbox:cpu / trainbox:gpu",
})
def export(c, gpu=False, output_dir=None, image=None):
    """Write the image as a docker-archive tarball, an Apptainer .def and a Slurm batch script."""
    from app.launch.export import ExportRequest
    from app.launch.export import export as run_export

    _run(run_export, ExportRequest(gpu=gpu, output_dir=output_dir, image=image))


@task(help={"quick": "fewer repetitions and no GPU image build (what CI runs, a few minutes)",
            "results": "where to write the JSON results (default bench/results.json)",
            "gpu_build": "build trainbox:gpu when absent to measure its size (full mode; default on)"})
def bench(c, quick=False, results=None, gpu_build=True):
    """Benchmark suite (bench/): ratios vs baselines measured in the same run; writes bench/results.json."""
    from pathlib import Path

    from bench.suite import RESULTS
    from bench.suite import run as run_bench

    results_path = Path(results) if results else RESULTS
    _exit_with(_run(run_bench, quick=quick, results_path=results_path, build_gpu=gpu_build))


ns = Collection(
    build, base, data, train, reproduce, test, lock, notebook, tensorboard, doctor, clean, export, bench
)
