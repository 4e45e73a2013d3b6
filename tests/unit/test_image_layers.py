"""The layers a run records: each digest paired with its Dockerfile step, host to manifest."""

from __future__ import annotations

import pytest

from app.container_env import IMAGE_LAYERS, LaunchFacts
from app.launch.layers import STEP_WIDTH, Layer, paired, step_text
from app.manifest import RunRecord

# What the classic builder's history says of the CPU image, newest first (sizes shortened).
HISTORY = [
    {"CreatedBy": "/bin/sh -c #(nop)  LABEL org.opencontainers.image.title=trainbox (cpu)", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop) COPY dir:0f1e2d3c4b5a69788796a5b4c3d2e1f0 in / ", "Size": 1_200_000},
    {"CreatedBy": "/bin/sh -c #(nop)  ARG BASE_IMAGE REVISION=unknown CREATED=unknown", "Size": 0},
    {"CreatedBy": '/bin/sh -c #(nop)  CMD ["python" "-m" "app" "--help"]', "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop)  USER trainbox", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop) WORKDIR /opt/trainbox", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop)  ENV PATH=/opt/venv/bin:/usr/local/sbin", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop) COPY dir:8c7b6a5948372615 in /opt ", "Size": 1_400_000_000},
    {
        "CreatedBy": "|3 LOCK_SHA256=ab12 SOURCE_DATE_EPOCH=315532800 VARIANT=cpu /bin/sh -c useradd"
        " --uid 1000 --create-home --shell /bin/bash trainbox  && chmod 1777 /home/trainbox",
        "Size": 330_000,
    },
    {"CreatedBy": "/bin/sh -c #(nop)  ARG SOURCE_DATE_EPOCH", "Size": 0},
    {"CreatedBy": "/bin/sh -c apt-get update  && apt-get install -y python3", "Size": 30_000_000},
    {"CreatedBy": "/bin/sh -c #(nop)  ENV DEBIAN_FRONTEND=noninteractive", "Size": 0},
    {"CreatedBy": "/bin/sh -c #(nop)  LABEL trainbox.project=trainbox", "Size": 0},
    {"CreatedBy": "", "Comment": "Imported from -", "Size": 120_000_000},
]
DIGESTS = [f"sha256:{n}{'0' * 63}" for n in range(5)]


def test_each_layer_gets_the_step_that_made_it():
    layers = paired(DIGESTS, HISTORY)
    assert [layer.digest for layer in layers] == DIGESTS
    assert [layer.step for layer in layers] == [
        "import (Imported from -)",
        "RUN apt-get update && apt-get install -y python3",
        "RUN useradd --uid 1000 --create-home --shell /bin/bash trainbox && chmod 1777 /home/trainbox",
        "COPY dir:8c7b6a5948372615 in /opt",
        "COPY dir:0f1e2d3c4b5a69788796a5b4c3d2e1f0 in /",
    ]


def test_a_step_that_made_a_layer_without_bytes_is_paired_by_what_it_does():
    """RUN mkdir makes a layer of folders only (Size 0); WORKDIR made none (no bytes, no RUN)."""
    history = [{"CreatedBy": "/bin/sh -c mkdir -p /srv/empty", "Size": 0}, *HISTORY]
    layers = paired([*DIGESTS, "sha256:" + "9" * 64], history)
    assert layers[-1].step == "RUN mkdir -p /srv/empty"


def test_when_history_cannot_tell_the_steps_stay_unknown():
    layers = paired(DIGESTS[:3], HISTORY)
    assert layers == [Layer(digest) for digest in DIGESTS[:3]]
    assert paired(DIGESTS, []) == [Layer(digest) for digest in DIGESTS]


def test_a_long_step_is_cut():
    text = step_text("/bin/sh -c " + "x" * 500)
    assert len(text) == STEP_WIDTH and text.startswith("RUN xxx") and text.endswith("...")


def test_the_layers_travel_to_the_container_and_into_the_manifest():
    facts = LaunchFacts(
        image_id="sha256:1", image_layers=(("sha256:" + "a" * 64, "RUN x"), ("sha256:" + "b" * 64, None))
    )
    assert LaunchFacts.from_environment(facts.to_environment()) == facts
    layers = [{"digest": digest, "step": step} for digest, step in facts.image_layers]
    record = RunRecord.model_validate(
        {"run_id": "r", "status": "completed", "image": {"id": "x", "tag": "t", "layers": layers}}
    )
    assert record.image.layers[1].digest == "sha256:" + "b" * 64
    assert record.to_json()["image"]["layers"] == layers


@pytest.mark.parametrize("value", ["not json", "{}", "[]", '[{"step": "x"}]', '[{"digest": "md5:1"}]', "[1]"])
def test_bad_layers_from_the_environment_are_one_line_naming_the_variable(value):
    with pytest.raises(ValueError, match=f"{IMAGE_LAYERS} is not") as caught:
        LaunchFacts.from_environment({IMAGE_LAYERS: value})
    assert "\n" not in str(caught.value)
