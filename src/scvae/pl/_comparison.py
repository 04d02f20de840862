"""Chart of a :func:`scvae.tl.compare_models` table."""

from os import PathLike

import numpy as np
import pandas as pd
from matplotlib.axes import Axes

from ._utils import finish, new_axes

#: Axis labels of the metrics of :func:`scvae.tl.compare_models`.
METRIC_LABELS: dict[str, str] = {
    "heldout_elbo": "held-out ELBO per cell (nats)",
    "heldout_log_likelihood": "held-out log-likelihood per cell (nats)",
    "ari": "adjusted Rand index",
    "nmi": "normalised mutual information",
}


def _model_name(row: pd.Series) -> str:
    if pd.isna(row["n_clusters"]):
        return "VAE"
    # GMVAEs that chose their number of clusters form one series, whatever each chose.
    auto = row.get("auto_clusters")  # missing (NaN) in tables made before the column
    if isinstance(auto, bool | np.bool_) and auto:
        return "GMVAE (auto)"
    return f"GMVAE (K={int(row['n_clusters'])})"  # a float in a table read from CSV


def model_comparison(
    df: pd.DataFrame,
    *,
    metric: str = "heldout_elbo",
    ax: Axes | None = None,
    show: bool | None = None,
    save: str | PathLike | None = None,
) -> Axes:
    """Point chart of one metric per likelihood, one marker series per model type.

    Parameters
    ----------
    df
        Table from :func:`scvae.tl.compare_models`.
    metric
        Column to plot: ``"heldout_elbo"``, ``"heldout_log_likelihood"``, ``"ari"`` or
        ``"nmi"`` (higher is better for all).
    ax
        Axes to draw on; by default a new figure.
    show
        ``True``: call :func:`matplotlib.pyplot.show` at the end; ``None`` (default) or
        ``False``: leave the figure open (a notebook shows it when the cell ends).
    save
        Path to save the figure to.

    Returns
    -------
    The axes.
    """
    if metric not in df:
        raise KeyError(f"{metric!r} is not a column of the table (columns: {list(df)}).")
    if df.empty:
        raise ValueError("The table has no rows to draw (a filter may have matched none).")
    names = df.apply(_model_name, axis=1)
    likelihoods = list(dict.fromkeys(df["likelihood"]))
    series = list(dict.fromkeys(names))
    ax = new_axes(ax, (1.2 * len(likelihoods) + 2.5, 3.5))
    offsets = np.linspace(-0.15, 0.15, len(series)) if len(series) > 1 else [0.0]
    for name, offset in zip(series, offsets, strict=True):
        rows = df[names == name]
        x = [likelihoods.index(lik) + offset for lik in rows["likelihood"]]
        ax.plot(x, rows[metric].astype(float), "o", markersize=8, label=name)
    ax.set_xticks(range(len(likelihoods)), likelihoods)
    ax.set_xlim(-0.5, len(likelihoods) - 0.5)
    ax.set_xlabel("likelihood")
    ax.set_ylabel(METRIC_LABELS.get(metric, metric))
    ax.set_title("Model comparison (higher is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(frameon=False)
    finish(ax, show, save)
    return ax
