"""`invoke test`: host-side tests here, TensorFlow tests inside the CPU image."""

from __future__ import annotations

import subprocess
import sys

from app.launch import containers, images
from app.launch.provenance import REPO_ROOT


def run_host_tests(pytest_args: list[str]) -> int:
    # tests/image needs TensorFlow, which the host need not have: not even collected here.
    command = [sys.executable, "-m", "pytest", "-m", "not image", "--ignore=tests/image", *pytest_args]
    print("$ " + " ".join(command), flush=True)
    return subprocess.run(command, cwd=REPO_ROOT, check=False).returncode


def run_image_tests(pytest_args: list[str], echo=print) -> int:
    image = images.ensure_image(gpu=False, echo=echo)
    command = ["python", "-m", "pytest", "-p", "no:cacheprovider", "-m", "image", "tests/image", *pytest_args]
    echo(f"$ {' '.join(command)}   (inside trainbox:cpu)")
    return containers.run_foreground(
        containers.ContainerSpec(image=image.id, command=command, role="test",
                                 environment={"TRAINBOX_IMAGE_ID": image.id,
                                              "TRAINBOX_IMAGE_TAG": images.default_tag(False)}),
        echo=echo,
    )
