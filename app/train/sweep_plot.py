"""`python -m app sweep-plot DIR`: the sweep's metric against each swept key, as a PNG.

Reads DIR/results.json (written by the host at the end of `invoke sweep`)."""

from __future__ import annotations

import json
from pathlib import Path


def sweep_figure(results: dict):
    """One panel per swept key: each completed trial's metric against the key's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys, metric = results["keys"], results["metric"]
    done = [trial for trial in results["trials"] if trial.get(metric) is not None]
    figure, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5), squeeze=False)
    for axis, key in zip(axes[0], keys, strict=True):
        values = [trial["params"][key] for trial in done]
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
        if numeric:
            axis.scatter(values, [trial[metric] for trial in done])
            if key in results.get("log_keys", []):
                axis.set_xscale("log")
        else:  # choices such as optimizer names or filter lists: one position per distinct value
            labels = sorted({json.dumps(v) for v in values})
            axis.scatter([labels.index(json.dumps(v)) for v in values], [trial[metric] for trial in done])
            axis.set_xticks(range(len(labels)), labels)
        axis.set(xlabel=key, ylabel=metric)
        axis.grid(alpha=0.3)
    figure.suptitle(f"sweep {results['sweep_id']} ({results['goal']} {metric})")
    figure.tight_layout()
    return figure


def write_plot(folder: Path) -> Path:
    results = json.loads((folder / "results.json").read_text(encoding="utf-8"))
    target = folder / f"{results['metric']}.png"
    sweep_figure(results).savefig(target, dpi=100)
    return target
