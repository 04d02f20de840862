"""How much partitions of the same cells agree with each other."""

from collections.abc import Sequence

import numpy as np
from sklearn.metrics import adjusted_rand_score


def mean_agreements(partitions: Sequence[np.ndarray]) -> np.ndarray:
    """Mean adjusted Rand index of each partition with each of the others (``nan`` alone).

    The most typical of several clusterings (k-means runs, GMVAE restarts) is the one of
    highest mean agreement.

    Parameters
    ----------
    partitions
        Cluster labels of the same cells, one array per partition.
    """
    n = len(partitions)
    agreement = np.zeros((n, n))
    for i in range(n):
        for j in range(i + 1, n):
            agreement[i, j] = agreement[j, i] = adjusted_rand_score(partitions[i], partitions[j])
    return agreement.sum(1) / (n - 1) if n > 1 else np.full(n, np.nan)
