"""`invoke bench`: benchmarks that report ratios against baselines measured in the same
run (not timed tests).

    figure.py     Figure, Goal, Baseline: what a step reports
    step.py       Plan (quick/full), Context, Step: what a step gets and is
    steps/        one module per measured step; STEPS in steps/__init__.py is the registry
    pairing.py    the paired design: sides back to back, order alternating
    runs.py       one measurement each: invoke train, native train, docker run, a workload
    fits.py       paired runs of the `fit` workload in the image
    workloads/    TensorFlow code the steps run inside the image (never imported on the host)
    report.py     the printed table and results.json
    suite.py      runs the chosen steps

Host side (everything but workloads/) never imports TensorFlow.
"""
