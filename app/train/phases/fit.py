"""The fit phase: train the remaining epochs (or until early stopping), then settle on the
weights the run keeps. What happens after each epoch is in callbacks.py."""

from __future__ import annotations

from app.train import control, data, distribute, fine_tune
from app.train.distribute import strategy_scope
from app.train.errors import UserError
from app.train.phases.callbacks import epoch_callbacks
from app.train.phases.run import Run


def fit(run: Run, dataset: data.Dataset, strategy) -> None:
    """Train the remaining epochs (unless the run already stopped early), then settle on the
    weights the run keeps: the last epoch's, or with training.restore_best the best one's."""
    training = run.config.training
    if control.watches_validation(training) and dataset.validation is None:
        raise UserError(
            "training.early_stopping_patience / restore_best watch the validation loss, but this "
            "data has no validation images: set data.validation, or a data.validation_split that "
            "leaves some"
        )
    done = run.first_epoch >= training.epochs or control.stops_early(
        run.history, training.early_stopping_patience
    )
    if not done:
        for first, end in fine_tune.stages(run.config, run.first_epoch):  # two with freeze_backbone_epochs
            with strategy_scope(strategy):  # a recompiled optimizer's variables are mirrored too
                fine_tune.enter_stage(run.model, run.config, first)
            train_epochs(run, dataset, strategy, first, end)
            if control.stops_early(run.history, training.early_stopping_patience):
                break
    keep_weights(run)


def train_epochs(run: Run, dataset: data.Dataset, strategy, first_epoch: int, epochs: int) -> None:
    """Train epochs first_epoch+1 .. epochs, recording after each one."""
    train_data, batches = training_data(run, dataset, strategy, first_epoch, epochs)
    validation = dataset.validation
    batch_size = run.config.training.batch_size
    run.model.fit(
        train_data,
        epochs=epochs,
        initial_epoch=first_epoch,
        steps_per_epoch=batches,
        validation_data=None if validation is None else data.eval_pipeline(validation, batch_size),
        callbacks=epoch_callbacks(run, first_epoch),
        shuffle=False,  # the pipeline already orders each epoch from (seed, epoch)
        verbose=2,
    )


def training_data(run: Run, dataset: data.Dataset, strategy, first_epoch: int, epochs: int):
    """The training split's pipeline for these epochs, and its batches per epoch."""
    config = run.config
    batch_size = config.training.batch_size
    weights = class_weights(run, dataset)
    if strategy is not None:  # global batch = per-worker batch x workers, sharded by worker
        return distribute.training_dataset(
            strategy,
            run.cluster.workers,
            dataset.train,
            batch_size,
            config.seed,
            first_epoch,
            epochs,
            weights,
        )
    pipeline = data.training_pipeline(dataset.train, batch_size, config.seed, first_epoch, epochs, weights)
    return pipeline, data.batches_per_epoch(dataset.train, batch_size)


def class_weights(run: Run, dataset: data.Dataset):
    """The per-class loss weights (training.class_weight), recorded in the manifest; or None."""
    if run.config.training.class_weight != "balanced":
        return None
    weights = control.balanced_class_weights(dataset.train.labels, len(dataset.class_names))
    run.record.class_weights = {
        name: float(weight) for name, weight in zip(dataset.class_names, weights, strict=True)
    }
    return weights


def keep_weights(run: Run) -> None:
    """With restore_best, the best epoch's weights replace the last epoch's; the manifest says
    which epoch's weights the run keeps, and whether it stopped early."""
    training = run.config.training
    if not control.watches_validation(training):
        return
    last = len(run.history)
    record = run.record
    record.best_epoch = control.best_epoch(run.history)
    if training.early_stopping_patience is not None:
        record.stopped_early = last < training.epochs
    record.weights_epoch = last
    if training.restore_best and run.best is not None:
        if run.best.epoch != last:
            run.model.set_weights(run.best.weights)
        record.weights_epoch = run.best.epoch
