# One Dockerfile for both images: `invoke build` (VARIANT=cpu) and `invoke build --gpu` (VARIANT=gpu).
# Classic-builder syntax only (the Docker SDK builds without BuildKit).
#
# Stages: system (Debian + python3) -> builder (venv from the lock file, slimmed)
#         -> runtime (system + venv + code). Only `runtime` is tagged; the build CA
#         bundle lives in `builder` alone and never reaches it.
ARG BASE_IMAGE=trainbox-base:bookworm

FROM ${BASE_IMAGE} AS system
# First, so every stage's image carries it: `invoke clean --images` finds the unnamed images
# that builds leave behind (the builder stage, replaced builds) by this label alone.
LABEL trainbox.project=trainbox
ENV DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 LC_ALL=C.UTF-8
# Debian's archive is signed, so apt needs no CA; the python3 package alone keeps the
# image far smaller than python3-pip would.
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 \
 && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log

FROM system AS builder
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3-venv binutils ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# Extra CA for TLS-intercepting proxies: empty when none is configured. Used for pip
# here only; the runtime stage copies the venv, not this file.
COPY docker/build-ca.crt /tmp/build-ca.crt
RUN cat /etc/ssl/certs/ca-certificates.crt /tmp/build-ca.crt > /tmp/pip-ca.crt \
 && python3 -m venv /opt/venv
ARG VARIANT=cpu
COPY requirements/${VARIANT}.lock /tmp/requirements.lock
RUN PIP_CERT=/tmp/pip-ca.crt PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    /opt/venv/bin/pip install --require-hashes --no-deps --only-binary=:all: -r /tmp/requirements.lock
# scikit-learn (with SciPy, ~200 MB) is in the lock for one build-time job: the digits
# dataset, split and saved as one file. Then it goes, and `pip check` proves nothing needed it.
COPY docker/bundle-digits.py docker/slim-venv.sh /tmp/
RUN mkdir -p /opt/venv/share/trainbox \
 && /opt/venv/bin/python /tmp/bundle-digits.py /opt/venv/share/trainbox/digits.npz \
 && /opt/venv/bin/python -m pip uninstall -q -y scikit-learn scipy joblib threadpoolctl \
 && /opt/venv/bin/python -m pip check \
 && sh /tmp/slim-venv.sh /opt/venv

FROM system AS runtime
ARG VARIANT=cpu
ARG LOCK_SHA256=unknown
# Any host UID runs this image (containers start as the invoking user), so HOME is
# world-writable with the sticky bit, like /tmp.
RUN useradd --uid 1000 --create-home --shell /bin/bash trainbox \
 && chmod 1777 /home/trainbox \
 && mkdir -p /data /outputs /opt/trainbox \
 && chown trainbox:trainbox /outputs
COPY --from=builder /opt/venv /opt/venv
# JupyterLab asks nothing of the internet (compute nodes cannot reach it): no news feed, no
# update check, no extension manager (lab config, page config and settings overrides).
COPY docker/jupyter /opt/venv/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/trainbox \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/home/trainbox \
    MPLCONFIGDIR=/tmp/matplotlib \
    TF_CPP_MIN_LOG_LEVEL=2 \
    TRAINBOX_VARIANT=${VARIANT} \
    TRAINBOX_LOCK_SHA256=${LOCK_SHA256}
WORKDIR /opt/trainbox
USER trainbox
CMD ["python", "-m", "app", "--help"]
# Provenance, filled in by `invoke build`. Declared after the last RUN: an ARG's value is
# part of the cache key of every RUN after it (CREATED changes with each build), but not
# of COPY or of the ARG step itself, so this step stays cached and a code change costs
# two steps (COPY app, LABEL). Each step commits a layer, and on fuse-overlayfs a commit
# walks every file of the image (~28k): ~6 s a step here, whatever the step does.
ARG BASE_IMAGE REVISION=unknown CREATED=unknown VERSION=unknown SOURCE=unknown GIT_DIRTY=unknown CODE_SHA256=unknown
# Code last, least often changed first: an edit under app/ rebuilds one layer, in seconds.
COPY pyproject.toml /opt/trainbox/
COPY configs /opt/trainbox/configs
COPY notebooks /opt/trainbox/notebooks
COPY tests /opt/trainbox/tests
COPY models /opt/trainbox/models
COPY app /opt/trainbox/app
LABEL org.opencontainers.image.title="trainbox (${VARIANT})" \
      org.opencontainers.image.revision=${REVISION} \
      org.opencontainers.image.created=${CREATED} \
      org.opencontainers.image.source=${SOURCE} \
      org.opencontainers.image.version=${VERSION} \
      org.opencontainers.image.base.name=${BASE_IMAGE} \
      trainbox.variant=${VARIANT} \
      trainbox.lock_sha256=${LOCK_SHA256} \
      trainbox.git_dirty=${GIT_DIRTY} \
      trainbox.code_sha256=${CODE_SHA256}
