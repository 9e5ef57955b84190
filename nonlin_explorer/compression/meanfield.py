r"""The mean-field objective for compressing an over-parameterized ReLU target (Amani et al., 2022).

Derivation (ours; the paper's text is not reproduced here).

Target ``f*(x) = sum_i a_i relu(w_i.x)``, compressed ``g(x) = sum_j b_j relu(v_j.x)``, ``x ~ N(0, I_d)``.
ReLU is positively homogeneous, so only ``c_j = b_j |v_j|`` and the directions ``u_j = v_j / |v_j|`` matter.
With the arc-cosine kernel ``E[relu(w.x) relu(v.x)] = |w||v| k(<w^, v^>)`` (``k(1) = 1/2``)::

    L(c, U) = E f*^2 - 2 sum_j c_j h(u_j) + c^T G(U) c,   h(u) = sum_i a_i |w_i| k(<w^_i, u>),
    G_jk = k(<u_j, u_k>),  G_jj = 1/2.

Mean field: the target directions ``w^_i`` are i.i.d. uniform on the sphere, independent of the scalings
``a_i |w_i|``. Rotation invariance makes ``E_w^ k(<w^, u>) = c_d`` the same for every unit ``u``. To
compute it, average the features first: ``E_w^ relu(w^.x) = |x| m_d`` with
``m_d = E relu(w^_1) = Gamma(d/2) / (2 sqrt(pi) Gamma((d+1)/2))``; then
``c_d = E_x[relu(u.x) |x|] m_d = d m_d^2`` (``|x|`` and ``x/|x|`` are independent, ``E|x|^2 = d``)::

    c_d = d Gamma(d/2)^2 / (4 pi Gamma((d+1)/2)^2) = 1/(2 pi) + 1/(4 pi d) + O(d^-2),   c_1 = 1/4.

Replacing ``h(u)`` by its mean ``A c_d``, with ``A = sum_i a_i |w_i|`` (N times the expected scaling factor
``E[a |w|]``), gives the simplified objective::

    L_bar(c, U) = E_bar - 2 A c_d 1^T c + c^T G(U) c,
    E_bar = S_2 / 2 + (A^2 - S_2) c_d,   S_2 = sum_i a_i^2 |w_i|^2

(``E_bar`` is the mean-field energy: the diagonal of ``E f*^2`` exactly, the off-diagonal pairs at their
mean ``c_d``). For fixed U it is quadratic in c: ``c* = A c_d G^-1 1`` and

    L_bar* = E_bar - (A c_d)^2 F(U),   F(U) = 1^T G(U)^-1 1.

So the optimal directions maximize ``F``, which depends only on (M, d), never on the target's
realization; the target enters only through the expected scaling factors ``A`` (and ``S_2``). Among
equiangular U, ``F = M / (1/2 + (M - 1) k(rho))`` is largest at the smallest feasible cosine
``rho = -1/(M-1)``: the simplex ETF (it needs M <= d + 1). Numerically it is the maximizer for M <= d + 1;
for M > d + 1 the maximizer is not equiangular (see :func:`meanfield_optimum`).

Error: ``h(u) - A c_d`` is a sum of N independent centred terms of size O(max |a_i|); a union bound over the
sphere suggests O(sqrt(d/N)) uniformly in u. Measured instead (:mod:`.approximation`, N = 250..16000,
d = 5..80, 5 seeds): the largest relative error found over the sphere goes like N^-0.49 d^+0.08, the pointwise
RMS like N^-0.51 d^-0.39: the d-dependence of sqrt(d/N) does not show.

Targets whose weights have a mean or an anisotropic covariance, and activations other than ReLU, lose the
rotation invariance used above: :class:`MeanFieldPopulation` averages the cross term over the weight law by
quadrature instead, and its optimum depends on the law (a simplex tilted towards the mean).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import torch

from nonlin_explorer.compression import _solvers
from nonlin_explorer.compression._checks import check_int
from nonlin_explorer.compression.etf import random_rotation, simplex_etf
from nonlin_explorer.compression.kernels import get_activation, kernel_matrix, relu_k
from nonlin_explorer.compression.targets import Target, WeightDistribution
from nonlin_explorer.validation import check_seed


def sphere_kernel_mean(d: int) -> float:
    """``c_d = E_u k(u_1)``, u uniform on the unit sphere of R^d: ``d Gamma(d/2)^2 / (4 pi Gamma((d+1)/2)^2)``."""
    d = check_int("d", d, minimum=1)
    return d * math.exp(2.0 * (math.lgamma(d / 2) - math.lgamma((d + 1) / 2))) / (4.0 * math.pi)


def meanfield_value(U: torch.Tensor) -> torch.Tensor:
    """``F(U) = 1^T G(U)^-1 1`` for unit rows U (..., M, d), ``G = k(<u_j, u_k>)``: the quantity to maximize."""
    G = kernel_matrix(U, None, "relu")
    ones = torch.ones(G.shape[:-1] + (1,), dtype=G.dtype, device=G.device)
    eye = torch.eye(G.shape[-1], dtype=G.dtype, device=G.device)
    return (ones * torch.linalg.solve(G + 1e-13 * eye, ones)).sum((-2, -1))


def equiangular_value(M: int, rho: float) -> float:
    """``F`` for M unit vectors at common cosine ``rho``: ``M / (1/2 + (M - 1) k(rho))``."""
    M = check_int("M", M, minimum=1)
    return M / (0.5 + (M - 1) * float(relu_k(torch.tensor(float(rho), dtype=torch.float64))))


def simplex_value(M: int) -> float:
    """``F`` at the simplex ETF, ``rho = -1/(M-1)``: the mean-field optimum when M <= d + 1."""
    M = check_int("M", M, minimum=1)
    return 2.0 if M == 1 else equiangular_value(M, -1.0 / (M - 1))


@dataclass
class MeanFieldOptimum:
    """Maximizer of ``F(U) = 1^T G(U)^-1 1`` over M unit vectors in R^d (any rotation of it is one too)."""

    U: torch.Tensor  # (M, d) unit rows
    value: float  # F(U)
    simplex_value: float | None  # F at the simplex ETF (None when M > d + 1)
    weights: torch.Tensor  # G^-1 1: the optimal c is A c_d times this
    M: int
    d: int

    @property
    def gram(self) -> torch.Tensor:
        """Cosines between the optimal directions."""
        return self.U @ self.U.T


@lru_cache(maxsize=128)
def _optimum_cpu(M: int, d: int, restarts: int, seed: int, max_iter: int):
    gen = torch.Generator().manual_seed(seed)
    starts = [torch.randn(M, d, generator=gen, dtype=torch.float64) for _ in range(restarts)]
    if M <= d + 1:
        starts[0] = simplex_etf(M, d, device="cpu")
    Z0 = torch.stack(starts).reshape(restarts, -1)

    def fun(z):
        Z = z.reshape(-1, M, d)
        U = Z / Z.norm(dim=-1, keepdim=True)
        return -meanfield_value(U)

    res = _solvers.lbfgs(fun, Z0, max_iter=max_iter, ftol=1e-15, gtol=1e-12)
    best = int(torch.argmin(res.f))
    Z = res.x[best].reshape(M, d)
    U = Z / Z.norm(dim=-1, keepdim=True)
    value = float(meanfield_value(U))
    if M <= d + 1 and value <= simplex_value(M) + 1e-12:
        U = simplex_etf(M, d, device="cpu")  # the exact ETF, not a rounded copy of it
        value = float(meanfield_value(U))
    G = kernel_matrix(U, None, "relu")
    try:
        weights = torch.linalg.solve(G, torch.ones(M, 1, dtype=torch.float64))[:, 0]
    except torch.linalg.LinAlgError:
        raise ValueError(f"the mean-field Gram matrix of M = {M} directions in d = {d} is singular (two directions "
                         "coincide): use fewer units or more dimensions") from None
    return U, value, weights


def meanfield_optimum(M: int, d: int, *, restarts: int = 6, seed: int = 0, max_iter: int = 1000,
                      device=None, dtype=torch.float64) -> MeanFieldOptimum:
    """Maximize ``F(U) = 1^T G(U)^-1 1`` over M unit vectors in R^d (target-independent, so cached).

    Restarts from random directions (and the simplex ETF when M <= d + 1); when no restart beats the simplex
    ETF, the exact ETF is returned. M = 1 gives a single direction, ``F = 2``.
    """
    M = check_int("M", M, minimum=1)
    d = check_int("d", d, minimum=1)
    restarts = check_int("restarts", restarts, minimum=1)
    U, value, weights = _optimum_cpu(M, d, restarts, check_seed(seed),
                                     check_int("max_iter", max_iter, minimum=1))
    dev = torch.device("cpu") if device is None else torch.device(device)
    return MeanFieldOptimum(U.to(dev, dtype), value, simplex_value(M) if M <= d + 1 else None,
                            weights.to(dev, dtype), M, d)


def _output_moments(target: Target, expected: bool) -> tuple[float, float]:
    """``(E[a], E[a^2])``: from a random target's recipe when ``expected``, else the sample moments."""
    info = target.info
    if expected and info.get("kind") == "random":
        norm = info["N"] if info["normalize"] else 1.0
        return info["a_mean"] / norm, (info["a_mean"] ** 2 + info["a_std"] ** 2) / norm**2
    a = target.a.detach().to("cpu", torch.float64)
    return float(a.mean()), float((a * a).mean())


def expected_scales(target: Target) -> tuple[float, float] | None:
    """``(A, S_2) = (N E[a] E|w|, N E[a^2] E|w|^2)`` from a random target's distribution, or None if unknown."""
    law = target.distribution
    if target.info.get("kind") != "random" or law is None:
        return None
    mean_a, mean_a2 = _output_moments(target, True)
    N = target.N
    return N * mean_a * law.mean_norm(), N * mean_a2 * law.mean_square_norm()


def scaling_factors(target: Target, *, expected: bool = True) -> tuple[float, float]:
    """``(A, S_2)``: expected values when the target's distribution is known (and ``expected``), else sums."""
    if expected:
        exp = expected_scales(target)
        if exp is not None:
            return exp
    n = target.W.norm(dim=1)
    return float(target.a @ n), float(((target.a * n) ** 2).sum())


@dataclass
class MeanFieldSolution:
    """The mean-field compressed network and its predicted loss ``L_bar*``."""

    b: torch.Tensor
    V: torch.Tensor
    loss: float  # L_bar*: predicted (mean-field) loss
    energy: float  # E_bar: mean-field energy of the target
    scale: float  # A
    c_d: float
    optimum: MeanFieldOptimum


def meanfield_loss(b, V, *, scale: float, s2: float, d: int | None = None) -> torch.Tensor:
    """``L_bar(c, U) = E_bar - 2 A c_d 1^T c + c^T G(U) c`` at ``c_j = b_j |v_j|``, ``u_j = v_j/|v_j|``."""
    V = torch.as_tensor(V, dtype=torch.float64)
    b = torch.as_tensor(b, dtype=V.dtype, device=V.device)
    d = V.shape[-1] if d is None else d
    c_d = sphere_kernel_mean(d)
    n = V.norm(dim=-1)
    c = b * n
    U = V / torch.where(n > 0, n, torch.ones_like(n))[..., None]
    G = kernel_matrix(U, None, "relu")
    energy = s2 / 2 + (scale**2 - s2) * c_d
    return energy - 2 * scale * c_d * c.sum(-1) + (c[..., None, :] @ G @ c[..., :, None])[..., 0, 0]


def meanfield_solution(target: Target, M: int, *, seed: int | None = 0, expected: bool = True,
                       restarts: int = 6) -> MeanFieldSolution:
    """Solve the mean-field problem for ``target``: directions from :func:`meanfield_optimum` (rotated by a
    Haar rotation drawn from ``seed``; None keeps the canonical one), ``c* = A c_d G^-1 1``."""
    if not closed_form_applies(target):
        raise ValueError("the closed-form mean field needs a relu target with centred isotropic weights; "
                         "compress(target, M, method='meanfield') solves the general one (MeanFieldPopulation)")
    M = check_int("M", M, minimum=1)
    if target.d == 1 and M > 2:
        raise ValueError(f"in d = 1 there are two directions only (+1 and -1): the mean field takes M <= 2, "
                         f"got M = {M}")
    opt = meanfield_optimum(M, target.d, restarts=restarts)
    A, S2 = scaling_factors(target, expected=expected)
    c_d = sphere_kernel_mean(target.d)
    U = opt.U
    if seed is not None:
        U = U @ random_rotation(target.d, seed).T
    energy = S2 / 2 + (A * A - S2) * c_d
    b = A * c_d * opt.weights
    loss = energy - (A * c_d) ** 2 * opt.value
    return MeanFieldSolution(b.to(target.device, target.dtype), U.to(target.device, target.dtype), float(loss),
                             float(energy), float(A), c_d, opt)


def target_law(target: Target) -> WeightDistribution:
    """The law the mean field averages over: a random target's own, else a Gaussian fitted to its weights
    (:meth:`WeightDistribution.fit`: the mean and anisotropy are kept only where they exceed sampling noise)."""
    return target.distribution if target.distribution is not None else WeightDistribution.fit(target.W)


def closed_form_applies(target: Target) -> bool:
    """Whether the closed form above holds: a ReLU target whose weight law is centred and isotropic."""
    return target.activation == "relu" and target_law(target).centred_isotropic()


#: Quadrature points over the weight law: the population target's units (closed-form kernels, quadrature ones)
POPULATION_POINTS = {True: 4096, False: 512}
#: Points whose pairs estimate the mean off-diagonal kernel E K(w, w') for the mean-field energy
ENERGY_POINTS = {True: 4096, False: 256}


@dataclass(eq=False)
class MeanFieldPopulation:
    """The simplified problem for any weight law and activation, as an exact problem on a population target.

    Independence of ``a`` and ``w`` replaces ``h(v) = sum_i a_i K(w_i, v)`` by its mean ``N E[a] E_w K(w, v)``;
    a quasi-Monte Carlo rule over the law (scrambled Sobol points ``w_k``, k = 1..n) turns that into the cross
    term of a target with n units of equal output weight ``N E[a] / n``: its exact optimum is the mean-field
    optimum. The mean-field energy ``E_bar = N E[a^2] E K(w, w) + N (N - 1) E[a]^2 E K(w, w')`` (off-diagonal
    pairs at their mean) makes the predicted loss ``L_bar(b, V) = E_bar - 2 b.h_bar(V) + b^T K(V, V) b``."""

    population: Target
    law: WeightDistribution
    energy: float
    mean_a: float
    mean_a2: float

    def predicted_loss(self, b: torch.Tensor, V: torch.Tensor) -> float:
        """``L_bar(b, V)``: the mean-field loss of a compressed network."""
        fn = self.population.loss_fn()
        with torch.no_grad():
            b = b.to(fn.device, fn.dtype)
            V = V.to(fn.device, fn.dtype)
            return float(self.energy - 2.0 * (fn.cross(V) * b).sum() + b @ fn.gram(V) @ b)


def meanfield_population(target: Target, *, expected: bool = True, points: int | None = None,
                         seed: int = 0) -> MeanFieldPopulation:
    """Build the population target of :class:`MeanFieldPopulation` for ``target`` (``points`` Sobol points,
    default :data:`POPULATION_POINTS`; ``expected``: the recipe's ``E[a]`` for random targets, else the sample's)."""
    act = get_activation(target.activation)
    law = target_law(target)
    n = check_int("points", points, minimum=2) if points is not None else POPULATION_POINTS[act.exact]
    Wp = law.quasi_sample(n, seed=seed)
    mean_a, mean_a2 = _output_moments(target, expected)
    N = target.N
    weight = N * mean_a / n
    a = torch.full((n,), weight, dtype=torch.float64)
    pop = Target(a.to(target.device, target.dtype), Wp.to(target.device, target.dtype), target.activation,
                 {"kind": "meanfield population", "N": n, "d": target.d})
    with torch.no_grad():
        diag = torch.cat([kernel_matrix(Wp[s:s + 4096, None, :], None, act).reshape(-1)
                          for s in range(0, n, 4096)])
        if weight != 0.0 and act.exact:  # the optimizer needs the population's energy anyway: reuse its pair sum
            pair_sum = float(pop.loss_fn().energy) / weight**2
            off = (pair_sum - float(diag.sum())) / (n * (n - 1))
        else:
            m = min(n, ENERGY_POINTS[act.exact])
            K = kernel_matrix(Wp[:m], None, act)
            off = float((K.sum() - torch.diagonal(K).sum()) / (m * (m - 1)))
    energy = N * mean_a2 * float(diag.mean()) + N * (N - 1) * mean_a**2 * off
    return MeanFieldPopulation(pop, law, energy, mean_a, mean_a2)


__all__ = [
    "ENERGY_POINTS",
    "POPULATION_POINTS",
    "MeanFieldOptimum",
    "MeanFieldPopulation",
    "MeanFieldSolution",
    "closed_form_applies",
    "equiangular_value",
    "expected_scales",
    "meanfield_loss",
    "meanfield_optimum",
    "meanfield_population",
    "meanfield_solution",
    "meanfield_value",
    "scaling_factors",
    "simplex_value",
    "sphere_kernel_mean",
    "target_law",
]
