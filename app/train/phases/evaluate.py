"""The evaluate phase: the model on the test split, and the results to look at."""

from __future__ import annotations

from app.train import data, plots
from app.train import results as test_results
from app.train.phases.run import Run


def evaluate(run: Run, dataset: data.Dataset) -> dict:
    """The run's metrics: the last epoch's, plus test accuracy and loss when there is a test set."""
    metrics = run.final_metrics()
    if dataset.test is not None:
        results = run.model.evaluate(
            data.eval_pipeline(dataset.test, run.config.training.batch_size), verbose=0, return_dict=True
        )
        metrics.update(test_accuracy=float(results["accuracy"]), test_loss=float(results["loss"]))
        if run.cluster.is_chief:  # the other workers write into a throwaway folder
            metrics.update(
                test_results.write_results(
                    run.run_dir,
                    run.run_id,
                    run.model,
                    dataset.test,
                    dataset.class_names,
                    run.config.training.batch_size,
                    step=len(run.history),
                    run_title=plots.run_title(run.run_id, metrics, run.config.to_dict()),
                )
            )
    return metrics
