"""TensorFlow workloads the steps run inside the image: `python -m bench.workloads.<name>`.

Each module reuses app.train (files, data, model) exactly as a training run does and
writes its answer as one JSON object into the file --result names. Per-epoch times come
from a callback; the first epoch (tracing) is reported but never used for throughput. Nothing here
imports docker; nothing on the host imports these modules.
"""
