"""Equiangular tight frames (ETFs): the simplex ETF, checks, the Welch bound, and a search for M > d + 1.

An ETF is a set of unit vectors with constant ``|<u_j, u_k>|`` (equiangular) whose frame operator
``sum_j u_j u_j^T`` is a multiple of the identity on their span (tight). The simplex ETF (M <= d + 1) has
Gram matrix ``(M/(M-1)) (I - 11^T/M)``: every pair at cosine ``-1/(M-1)``, summing to zero. Amani et al.
(2022) conjecture that ReLU compression puts the weights on one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from nonlin_explorer.compression._checks import as_tensor, check_int, check_real, resolve_device
from nonlin_explorer.validation import check_seed


def _helmert(M: int) -> np.ndarray:
    """Orthonormal basis (M, M-1) of the vectors orthogonal to ``1`` in R^M (Helmert's)."""
    Q = np.zeros((M, M - 1))
    for k in range(1, M):
        Q[:k, k - 1] = 1.0
        Q[k, k - 1] = -float(k)
        Q[:, k - 1] /= math.sqrt(k * (k + 1))
    return Q


def simplex_coordinates(M: int) -> np.ndarray:
    """The M vertices of the regular simplex as unit vectors in R^(M-1), shape (M, M-1)."""
    M = check_int("M", M, minimum=2)
    return math.sqrt(M / (M - 1)) * _helmert(M)


def random_rotation(d: int, seed: int | None = None, *, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Haar-random orthogonal d x d matrix (QR of a Gaussian matrix, signs fixed), float64 on the CPU."""
    d = check_int("d", d, minimum=1)
    gen = generator or torch.Generator().manual_seed(0 if seed is None else check_seed(seed))
    Q, R = torch.linalg.qr(torch.randn(d, d, generator=gen, dtype=torch.float64))
    return Q * torch.sign(torch.diagonal(R)).where(torch.diagonal(R) != 0, torch.ones(d, dtype=torch.float64))


def simplex_etf(M: int, d: int, rotation=None, seed: int | None = None, *, device=None,
                dtype=torch.float64) -> torch.Tensor:
    """M unit vectors in R^d (rows, shape (M, d)) with all pairwise cosines ``-1/(M-1)``; needs M <= d + 1.

    Without ``rotation``/``seed`` the vectors span the first M-1 coordinates. ``rotation`` (d x d orthogonal)
    is applied as ``U @ rotation.T``; ``seed`` draws a Haar-random rotation instead. M = 1 gives ``e_1``.
    """
    M = check_int("M", M, minimum=1)
    d = check_int("d", d, minimum=1)
    if M > d + 1:
        raise ValueError(f"a simplex ETF of M = {M} vectors needs d >= M - 1 = {M - 1}, got d = {d}; "
                         "use etf_search for M > d + 1")
    if rotation is not None and seed is not None:
        raise ValueError("pass rotation or seed, not both")
    U = np.zeros((M, d))
    if M == 1:
        U[0, 0] = 1.0
    else:
        U[:, : M - 1] = simplex_coordinates(M)
    out = torch.from_numpy(U)
    if seed is not None:
        rotation = random_rotation(d, seed)
    if rotation is not None:
        R = as_tensor("rotation", rotation, ndim=2, device="cpu", dtype=torch.float64)
        if R.shape != (d, d):
            raise ValueError(f"rotation must be {d} x {d}, got {tuple(R.shape)}")
        if not torch.allclose(R @ R.T, torch.eye(d, dtype=torch.float64), atol=1e-8):
            raise ValueError("rotation must be orthogonal (R @ R.T == I)")
        out = out @ R.T
    return out.to(device=resolve_device(device), dtype=dtype)


def simplex_gram(M: int, *, dtype=torch.float64, device=None) -> torch.Tensor:
    """The simplex ETF's Gram matrix ``(M/(M-1)) (I - 11^T/M)``: ones on the diagonal, ``-1/(M-1)`` off it."""
    M = check_int("M", M, minimum=1)
    if M == 1:
        return torch.ones(1, 1, dtype=dtype, device=resolve_device(device))
    G = torch.full((M, M), -1.0 / (M - 1), dtype=dtype, device=resolve_device(device))
    G.fill_diagonal_(1.0)
    return G


def welch_bound(M: int, d: int) -> float:
    """Smallest possible coherence ``max |<u_j, u_k>|`` of M unit vectors in R^d: ``sqrt((M-d)/(d(M-1)))``.

    Zero when M <= d (orthonormal vectors fit); ETFs are exactly the frames that attain it.
    """
    M = check_int("M", M, minimum=1)
    d = check_int("d", d, minimum=1)
    if M <= d:
        return 0.0
    return math.sqrt((M - d) / (d * (M - 1)))


def coherence(U) -> float:
    """``max_{j != k} |<u_j, u_k>| / (|u_j| |u_k|)``."""
    U = as_tensor("U", U, ndim=2)
    if U.shape[0] < 2:
        return 0.0
    n = U.norm(dim=1)
    if bool((n == 0).any()):
        raise ValueError("U has a zero row: its cosines are undefined")
    C = (U / n[:, None]) @ (U / n[:, None]).T
    C.fill_diagonal_(0.0)
    return float(C.abs().max())


def is_etf(U, tol: float = 1e-8, *, full_space: bool = False) -> bool:
    """Whether the rows of U (M, d) are an ETF: unit norm, equal ``|cosines|``, tight on their span.

    Tight means ``sum_j u_j u_j^T = (M/r) P`` with P the projection on the span and r its dimension (the
    simplex ETF with M < d + 1 is tight on its (M-1)-dimensional span); ``full_space=True`` asks for
    ``r = d``. All three checked to ``tol``.
    """
    U = as_tensor("U", U, ndim=2)
    tol = check_real("tol", tol, positive=True)
    M, d = U.shape
    if not torch.allclose(U.norm(dim=1), torch.ones(M, dtype=U.dtype, device=U.device), atol=tol, rtol=0):
        return False
    if M >= 2:
        C = (U @ U.T).abs()
        off = C[~torch.eye(M, dtype=torch.bool, device=U.device)]
        if float(off.max() - off.min()) > tol:
            return False
    S = U.T @ U  # frame operator (d, d)
    evals, evecs = torch.linalg.eigh(S)
    r = int((evals > 1e-6 * max(float(evals.max()), 1e-300)).sum())
    if full_space and r != d:
        return False
    P = evecs[:, -r:] @ evecs[:, -r:].T
    return float((S - (M / r) * P).abs().max()) <= tol


@dataclass
class ETFSearchResult:
    """Outcome of :func:`etf_search`: the frame (rows), its coherence and how far that is above Welch's bound."""

    U: torch.Tensor
    coherence: float
    welch_bound: float
    iterations: int
    restarts: int

    @property
    def gap(self) -> float:
        """``coherence - welch_bound``: zero (to rounding) exactly when U is an ETF."""
        return self.coherence - self.welch_bound


def etf_search(M: int, d: int, *, seed: int = 0, restarts: int = 8, max_iter: int = 5000,
               tol: float = 1e-13) -> ETFSearchResult:
    """Look for an ETF of M unit vectors in R^d by alternating projections (Tropp et al., 2005).

    Alternates between Gram matrices with unit diagonal and off-diagonals clipped to the Welch bound
    (the equiangular side) and the nearest rank-d Gram with eigenvalues M/d (the tight side); keeps the
    lowest coherence over ``restarts`` random starts. Real ETFs with M > d + 1 exist only for special
    (d, M), e.g. (3, 6) (the icosahedron's diagonals) or (5, 10); otherwise the result reports the gap.
    For M <= d + 1 it returns the simplex ETF (or orthonormal vectors when M <= d).
    """
    M = check_int("M", M, minimum=1)
    d = check_int("d", d, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    max_iter = check_int("max_iter", max_iter, minimum=1)
    mu = welch_bound(M, d)
    if M <= d:  # orthonormal vectors reach coherence 0 = Welch's bound
        U = torch.eye(d, dtype=torch.float64)[:M]
        return ETFSearchResult(U, 0.0, mu, 0, 0)
    if M == d + 1:
        U = simplex_etf(M, d, device="cpu")
        return ETFSearchResult(U, coherence(U), mu, 0, 0)
    rng = np.random.default_rng(check_seed(seed))
    best, best_coh, best_it = None, np.inf, 0
    off = ~np.eye(M, dtype=bool)
    for _ in range(restarts):
        X = rng.standard_normal((d, M))
        X /= np.linalg.norm(X, axis=0)
        G = X.T @ X
        it = 0
        while it < max_iter:
            it += 1
            H = np.clip(G, -mu, mu)  # equiangular side: |off-diagonals| <= Welch bound
            np.fill_diagonal(H, 1.0)
            w, Vec = np.linalg.eigh(H)  # tight side: rank d, eigenvalues M/d
            top = Vec[:, -d:]
            G_new = (M / d) * top @ top.T
            change = np.abs(G_new - G).max()
            G = G_new
            if change < tol:
                break
        U = np.sqrt(M / d) * top.T  # columns are the frame vectors
        U /= np.linalg.norm(U, axis=0)
        coh = np.abs((U.T @ U)[off]).max()
        if coh < best_coh:
            best, best_coh, best_it = U.T.copy(), coh, it
    return ETFSearchResult(torch.from_numpy(best), float(best_coh), mu, best_it, restarts)
