"""The energy score of a one-step jump's samples against target samples (the ``consistency_loss="energy"`` option).

The paper's consistency loss regresses each noise draw onto its own target, so the jump must learn *which*
noise goes to which mode; where that boundary is not learnt sharply, the squared error's answer is the
average of the modes. The energy score (Gneiting & Raftery 2007, "Strictly proper scoring rules", eq. 22)
with beta = 1,

    ES(P, z) = E|Y - z| - 1/2 E|Y - Y'|,   Y, Y' ~ P independent,

is strictly proper: its expectation over targets z ~ Q is minimised only by P = Q, whichever draws of P
land on which mode. De Bortoli et al. 2025 ("Distributional diffusion models with scoring rules",
arXiv 2502.02483) train few-step diffusion samplers with it for that reason. Here P is the jump's samples
for one observation and Q the consistency target's samples (the model's own k-step sampler) for the same
observation.
"""

from torch import Tensor

# Added under the square root of every distance: two coinciding chunks (at the zero-initialised start every
# draw of an observation lands near the same mean) would otherwise give an infinite gradient of |.|.
DISTANCE_EPS = 1e-8


def rms_distances(a: Tensor, b: Tensor) -> Tensor:
    """Root-mean-square distance between every pair of chunks: a (G, m, D), b (G, n, D) -> (G, m, n).

    RMS over the D = horizon x action-dim entries (not the Euclidean norm), so the score's scale does not
    grow with the chunk size and reads in the units of the normalised actions.
    """
    return ((a.unsqueeze(2) - b.unsqueeze(1)).pow(2).mean(-1) + DISTANCE_EPS).sqrt()


def energy_score(samples: Tensor, targets: Tensor) -> Tensor:
    """Energy score per observation: samples (G, m, D) with m >= 2, targets (G, n, D) -> (G,).

    E|Y - Z| over all m x n pairs, minus half the mean distance between the m(m-1) ordered pairs of distinct
    samples (the unbiased estimate of E|Y - Y'|). Gradients reach ``samples`` only; pass ``targets``
    detached. Raises ValueError for m < 2 (no spread term) or mismatched shapes.
    """
    if (
        samples.ndim != 3
        or targets.ndim != 3
        or samples.shape[0] != targets.shape[0]
        or samples.shape[-1] != targets.shape[-1]
    ):
        raise ValueError(
            f"energy_score needs (G, m, D) and (G, n, D), got {tuple(samples.shape)} and {tuple(targets.shape)}"
        )
    m = samples.shape[1]
    if m < 2:
        raise ValueError(f"energy_score needs at least 2 samples per observation, got {m}")
    attract = rms_distances(samples, targets).mean(dim=(1, 2))
    spread = rms_distances(samples, samples)
    off_diagonal = spread.sum(dim=(1, 2)) - spread.diagonal(dim1=1, dim2=2).sum(-1)
    return attract - 0.5 * off_diagonal / (m * (m - 1))
