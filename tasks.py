"""trainbox tasks: `invoke --list` shows them all. Logic lives in app/launch/."""

from __future__ import annotations

from invoke import Collection, Exit, task

from app import settings
from app.launch.containers import DEFAULT_SHM_SIZE
from app.launch.errors import TrainboxError, boundary


def _run(action, *args, **kwargs):
    """Call host-side logic: the one error boundary. Mistakes end in one line and a non-zero exit."""
    try:
        with boundary():
            return action(*args, **kwargs)
    except TrainboxError as error:
        raise Exit(f"trainbox: {error}", code=error.exit_code) from None


def _exit_with(status: int) -> None:
    if status != 0:
        raise Exit(code=status)


CPU_TAG, GPU_TAG = settings.image_tag(gpu=False), settings.image_tag(gpu=True)


def _repo_path(path) -> str:
    return str(path.relative_to(settings.REPO_ROOT)) + "/"


DATA_DIR, OUTPUT_DIR = _repo_path(settings.DEFAULT_DATA_DIR), _repo_path(settings.DEFAULT_OUTPUT_DIR)
NOTEBOOK_DIR, EXPORT_DIR = _repo_path(settings.DEFAULT_NOTEBOOK_DIR), _repo_path(settings.DEFAULT_EXPORT_DIR)
DATA_DIR_HELP = f"data directory, mounted read-only (default: {DATA_DIR})"
CACHE_DIR_HELP = "where decoded images are kept for later runs (default: <output dir>/.cache)"


def _run_request(
    config, set_, resume, data_dir, output_dir, cache_dir, image, cpus, memory, shm_size
) -> dict:
    """The fields `train` and `sweep` both hand on: the experiment, its folders and image, and
    the container's limits (a bad --cpus, --memory or --shm-size ends here in one line)."""
    from app.launch import options

    return {
        "config_file": config,
        "overrides": tuple(set_ or ()),
        "resume": resume,
        "data_dir": data_dir,
        "output_dir": output_dir,
        "cache_dir": cache_dir,
        "image": image,
        "limits": _run(options.limits, cpus=cpus, memory=memory, shm_size=shm_size),
    }


@task(
    help={
        "gpu": f"build {GPU_TAG} (tensorflow[and-cuda]) instead of {CPU_TAG}",
        "tag": f"tag the image differently from {CPU_TAG} / {GPU_TAG}",
        "base_image": f"base image (default {settings.BASE_IMAGE}, made locally when missing)",
        "ca_bundle": "extra CA bundle (PEM) for pip in the build; default: $TRAINBOX_CA_BUNDLE or pip's",
        "no_cache": "rebuild every layer",
    }
)
def build(c, gpu=False, tag=None, base_image=None, ca_bundle=None, no_cache=False):
    """Build the CPU (default) or GPU image, streaming progress."""
    from app.launch.images import BuildRequest, build_image

    request = BuildRequest(
        variant="gpu" if gpu else "cpu",
        tag=tag,
        base_image=base_image or settings.BASE_IMAGE,
        ca_bundle=ca_bundle,
        no_cache=no_cache,
    )
    _run(build_image, request)


@task(help={"name": f"tag of the base image to make (default {settings.BASE_IMAGE})"})
def base(c, name=None):
    """Make the Debian base image locally (debootstrap + import) when no registry is reachable."""
    from app.launch.base import make_base_image

    _run(make_base_image, name or settings.BASE_IMAGE)


@task(help={"data_dir": f"where to write it (default: {DATA_DIR})", "gpu": "use the GPU image"})
def data(c, data_dir=None, gpu=False):
    """Write the bundled default dataset (handwritten digits as PNG folders) into the data directory."""
    from app.launch.folders import resolve_dir
    from app.launch.training import prepare_data

    _run(prepare_data, resolve_dir(data_dir, settings.DEFAULT_DATA_DIR), gpu=gpu)


@task(
    iterable=["set_"],
    help={
        "config": f"experiment YAML (default: {settings.DEFAULT_CONFIG.relative_to(settings.REPO_ROOT)})",
        "set_": "override one key, e.g. --set training.epochs=3 (repeatable)",
        "gpu": f"train in {GPU_TAG} with all GPUs requested",
        "resume": "continue the interrupted run RUN_ID in its own directory",
        "data_dir": DATA_DIR_HELP,
        "output_dir": f"where run directories go (default: {OUTPUT_DIR})",
        "cache_dir": CACHE_DIR_HELP,
        "image": f"run another image tag than {CPU_TAG} / {GPU_TAG}",
        "cpus": "CPU limit for the container, e.g. 1.5",
        "memory": "memory limit for the container, e.g. 4g",
        "shm_size": f"shared memory size (default {DEFAULT_SHM_SIZE})",
        "workers": "N > 1: N containers with MultiWorkerMirroredStrategy (global batch = batch x N)",
    },
)
def train(
    c,
    config=None,
    set_=None,
    gpu=False,
    resume=None,
    data_dir=None,
    output_dir=None,
    cache_dir=None,
    image=None,
    cpus=None,
    memory=None,
    shm_size=None,
    workers=None,
):
    """Train in a container (building the image and writing the default data first if missing)."""
    from app.launch import options
    from app.launch.training import TrainRequest
    from app.launch.training import train as run_training

    shared = _run_request(
        config, set_, resume, data_dir, output_dir, cache_dir, image, cpus, memory, shm_size
    )
    workers = None if workers is None else _run(options.parse_count, workers, "--workers")
    _exit_with(_run(run_training, TrainRequest(gpu=gpu, workers=workers, **shared)))


@task(
    help={
        "run_id": "the completed run to re-run (a folder name under the output directory)",
        "output_dir": f"where the run is and the re-run goes (default: {OUTPUT_DIR})",
        "data_dir": DATA_DIR_HELP,
        "image_archive": "when the run's image is gone: load it from this `docker save` tarball "
        "(invoke export writes one) instead of rebuilding it from the run's commit",
    }
)
def reproduce(c, run_id, output_dir=None, data_dir=None, image_archive=None):
    """Re-run a recorded run in its image and code; exit 0 only when the results are identical."""
    from app.launch.reproduce import ReproduceRequest
    from app.launch.reproduce import reproduce as run_reproduce

    request = ReproduceRequest(
        run_id=run_id, output_dir=output_dir, data_dir=data_dir, image_archive=image_archive
    )
    _exit_with(_run(run_reproduce, request))


@task(
    iterable=["set_"],
    help={
        "sweep_file": "the sweep YAML: grid and/or random sections, trials, seed, metric, goal",
        "config": f"base experiment YAML (default: {_repo_path(settings.DEFAULT_CONFIG).rstrip('/')})",
        "set_": "override one base key, e.g. --set training.epochs=3 (repeatable)",
        "parallel": "run N trials at once, each with 1/N of --cpus (default 1)",
        "resume": "continue the sweep SWEEP_ID: completed trials skipped, interrupted ones resumed",
        "data_dir": DATA_DIR_HELP,
        "output_dir": f"where the trials' run directories and sweeps/ go (default: {OUTPUT_DIR})",
        "cache_dir": CACHE_DIR_HELP,
        "image": f"run another image tag than {CPU_TAG}",
        "cpus": "CPUs for all trials together (default: the host's cores when --parallel > 1)",
        "memory": "memory limit of each trial's container, e.g. 4g",
        "shm_size": f"shared memory size of each trial's container (default {DEFAULT_SHM_SIZE})",
    },
)
def sweep(
    c,
    sweep_file,
    config=None,
    set_=None,
    parallel=None,
    resume=None,
    data_dir=None,
    output_dir=None,
    cache_dir=None,
    image=None,
    cpus=None,
    memory=None,
    shm_size=None,
):
    """Run every trial of a sweep file as its own run (N at a time); ends with a table and a plot."""
    from app.launch import options
    from app.launch.sweeps import SweepRequest
    from app.launch.sweeps import sweep as run_sweep

    parallel = 1 if parallel is None else _run(options.parse_count, parallel, "--parallel")
    shared = _run_request(
        config, set_, resume, data_dir, output_dir, cache_dir, image, cpus, memory, shm_size
    )
    _exit_with(_run(run_sweep, SweepRequest(sweep_file=sweep_file, parallel=parallel, **shared)))


@task(
    iterable=["compare"],
    help={
        "output_dir": f"where the runs are (default: {OUTPUT_DIR})",
        "json": "print JSON instead of a table",
        "compare": "--compare A,B: two runs side by side, and whether they are comparable",
    },
)
def runs(c, output_dir=None, json=False, compare=None):
    """One line per run, newest first (status, epochs, test accuracy, commit, image, changed keys)."""
    from app.launch import run_table
    from app.launch.folders import resolve_dir

    folder = resolve_dir(output_dir, settings.DEFAULT_OUTPUT_DIR)
    if compare:
        _run(run_table.compare_runs, folder, compare, as_json=json)
    else:
        _run(run_table.show_runs, folder, as_json=json)


@task(
    help={
        "run_id": "the completed run whose model.keras classifies",
        "path": "an image file or a folder of them; more after --: invoke predict RUN a.jpg -- b.jpg c/",
        "json": "print JSON instead of the table",
        "output_dir": f"where the run is (default: {OUTPUT_DIR})",
        "image": f"predict in this image (e.g. {CPU_TAG}) instead of the one the run recorded",
    }
)
def predict(c, run_id, path, json=False, output_dir=None, image=None):
    """Classify image files or folders with a run's model in the run's image: file, class, probability."""
    import sys

    from app.launch.options import after_double_dash
    from app.launch.predict import PredictRequest
    from app.launch.predict import predict as run_predict

    paths = (path, *after_double_dash(sys.argv))
    request = PredictRequest(run_id=run_id, paths=paths, output_dir=output_dir, as_json=json, image=image)
    _exit_with(_run(run_predict, request))


@task(
    help={
        "pytest_args": "extra arguments for pytest, e.g. '-k config -x'",
        "host_only": "skip the tests that run inside the image",
        "image_only": "run only the tests inside the image",
    }
)
def test(c, pytest_args="", host_only=False, image_only=False):
    """Run the whole test suite: host side (unit + real engine) and inside the CPU image."""
    import shlex

    from app.launch.testing import run_all_tests, run_host_tests, run_image_tests

    args = shlex.split(pytest_args)
    if host_only:
        _exit_with(run_host_tests(args))
    elif image_only:
        _exit_with(_run(run_image_tests, args))
    else:
        _exit_with(_run(run_all_tests, args))


@task
def lock(c):
    """Regenerate requirements/{cpu,gpu}.lock (with hashes) from the .in files, using uv."""
    from app.launch.locks import lock_all

    _run(lock_all)


LISTEN_HELP = f"host address to publish on (default {settings.LOCALHOST}; any other is reachable by others)"


def _port_help(default: int) -> str:
    return f"host port (default {default}, or the next free one; an explicit busy port is an error)"


@task(
    help={
        "port": _port_help(settings.NOTEBOOK_PORT),
        "gpu": f"use {GPU_TAG} and request the GPUs",
        "listen": LISTEN_HELP,
        "data_dir": f"data directory, mounted read-only at {settings.DATA_MOUNT} (default {DATA_DIR})",
        "output_dir": f"output directory, mounted at {settings.OUTPUTS_MOUNT} (default {OUTPUT_DIR})",
        "notebook_dir": f"folder Jupyter opens and saves into (default {NOTEBOOK_DIR})",
    }
)
def notebook(
    c, port=None, gpu=False, listen=settings.LOCALHOST, data_dir=None, output_dir=None, notebook_dir=None
):
    """JupyterLab in the image on 127.0.0.1 with a fresh token; Ctrl-C stops and removes it."""
    from app.launch import options
    from app.launch.services import ServiceRequest
    from app.launch.services import notebook as run_notebook

    request = ServiceRequest(
        port=None if port is None else _run(options.parse_port, port),
        gpu=gpu,
        listen=listen,
        data_dir=data_dir,
        output_dir=output_dir,
        notebook_dir=notebook_dir,
    )
    _exit_with(_run(run_notebook, request))


@task(
    help={
        "port": _port_help(settings.TENSORBOARD_PORT),
        "listen": LISTEN_HELP,
        "output_dir": f"output directory whose runs are shown (default {OUTPUT_DIR})",
    }
)
def tensorboard(c, port=None, listen=settings.LOCALHOST, output_dir=None):
    """TensorBoard over the output directory on 127.0.0.1; Ctrl-C stops and removes it."""
    from app.launch import options
    from app.launch.services import ServiceRequest
    from app.launch.services import tensorboard as run_tensorboard

    request = ServiceRequest(
        port=None if port is None else _run(options.parse_port, port), listen=listen, output_dir=output_dir
    )
    _exit_with(_run(run_tensorboard, request))


@task
def doctor(c):
    """Check the host: the engine (Docker or Podman), disk, images, base image, CA/proxy, GPUs."""
    from app.launch.doctor import doctor as run_doctor

    _exit_with(_run(run_doctor))


@task(
    help={
        "images": f"also remove the {settings.IMAGE_REPOSITORY}:* images and the unnamed images of earlier "
        "builds (found by the project label; the base image is kept)",
        "base": f"also remove the base image {settings.BASE_IMAGE} (implies --images)",
    }
)
def clean(c, images=False, base=False):
    """Remove the project's containers, networks and volumes (label trainbox.project=trainbox)."""
    from app.launch.clean import clean as run_clean

    _run(run_clean, images=images, base=base)


@task(
    iterable=["set_"],
    help={
        "gpu": f"export {GPU_TAG} instead of {CPU_TAG}",
        "output_dir": f"where the tarball, .def and .sbatch go (default: {EXPORT_DIR})",
        "image": f"export another tag than {CPU_TAG} / {GPU_TAG}",
        "sweep": "also a Slurm job array for this sweep file, one array task per trial",
        "config": "the sweep's base experiment YAML (with --sweep)",
        "set_": "override one base key of the sweep, e.g. --set training.epochs=3 (with --sweep)",
    },
)
def export(c, gpu=False, output_dir=None, image=None, sweep=None, config=None, set_=None):
    """Write the image as a docker-archive tarball, an Apptainer .def and a Slurm batch script."""
    from app.launch.export import ExportRequest
    from app.launch.export import export as run_export

    if (config or set_) and not sweep:
        raise Exit("trainbox: --config and --set go with --sweep FILE (the sweep's base config)", code=2)
    request = ExportRequest(
        gpu=gpu,
        output_dir=output_dir,
        image=image,
        sweep_file=sweep,
        config_file=config,
        overrides=tuple(set_ or ()),
    )
    _run(run_export, request)


@task(
    iterable=["only"],
    help={
        "quick": "fewer repetitions and no GPU image build (what CI runs, a few minutes)",
        "only": "run one step or figure, e.g. --only launch (repeatable; default: all)",
        "results": "where to write the JSON results (default bench/results.json)",
        "gpu_build": "build trainbox:gpu when absent to measure its size (full mode; default on)",
    },
)
def bench(c, quick=False, only=None, results=None, gpu_build=True):
    """Benchmark suite (bench/): ratios vs baselines measured in the same run; writes bench/results.json."""
    from pathlib import Path

    from bench.suite import RESULTS
    from bench.suite import run as run_bench

    results_path = Path(results) if results else RESULTS
    _exit_with(_run(run_bench, quick=quick, only=only or (), results_path=results_path, build_gpu=gpu_build))


ns = Collection(
    *(build, base, data, train, reproduce, runs, sweep, predict, test, lock),
    *(notebook, tensorboard, doctor, clean, export, bench),
)
