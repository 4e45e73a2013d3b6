"""One training run in four phases, called in order by app/train/session.py.

start     (start.py) claim the run: a new one gets its directory (and its lock), config.yaml
          and a `running` manifest (records.py); a resumed one a `resumes` entry. Build the
          model, or restore it from the newest checkpoint that loads.
fit       (fit.py) train the remaining epochs (or until early stopping); after each
          (callbacks.py): checkpoint, history, manifest. Then, with restore_best, the best
          epoch's weights.
evaluate  (evaluate.py) the model on the test split; the results to look at (app/train/results.py).
finish    (finish.py) model.keras, learning_curves.png and the `completed` manifest.

run.py holds what the phases share: the run as this process sees it. Every module here
imports TensorFlow; session.py imports them only after the cheap checks.
"""
