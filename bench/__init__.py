"""`invoke bench`: benchmarks that print ratios measured in one run (not timed tests).

Host side (suite.py, measure.py) never imports TensorFlow; workload.py runs where
TensorFlow is: inside the image (mounted read-only at /bench) or natively.
"""
