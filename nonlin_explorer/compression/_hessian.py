"""Exact gradient and Riemannian Hessian of the ReLU loss in ``(b, u_1..u_M)``, each ``u_j`` on the unit sphere.

Newton steps with this Hessian cost O(N M d^2) and converge where L-BFGS crawls: the exact loss is almost
flat along rotations (the mean-field limit is rotation invariant, finite N breaks it at O(N^-1/2)).

With unit ``u``, ``t = arccos <x^, u>`` and the unit vector ``e = (x^ - cos(t) u) / sin t`` orthogonal to u,
the arc-cosine kernel ``K(x, u) = (|x| sin t + (pi - t) x.u) / (2 pi)`` has (ours, checked numerically)::

    grad_u K        = (|x| sin t u + (pi - t) x) / (2 pi)
    P hess_uu K P   = |x| sin t / (2 pi) (P + e e^T),                   P = I - u u^T
    hess_uv K       = ((pi - t) I + sin t (e' e^T + u v^T)) / (2 pi)    (rows u, columns v; x = v unit,
                                                                         e' = (u - cos(t) v) / sin t)

All bounded, and continuous at ``t = 0, pi`` (the ``sin t`` factors vanish there). On the sphere the
Riemannian Hessian is ``P hess P - (u . grad) P``; we work in an orthonormal basis of each tangent space.
"""

from __future__ import annotations

import math

import torch

TWO_PI = 2.0 * math.pi


def tangent_bases(U: torch.Tensor) -> torch.Tensor:
    """Orthonormal bases (M, d, d-1) of the tangent spaces of the unit rows of U (M, d)."""
    return torch.linalg.qr(U[:, :, None], mode="complete")[0][..., 1:]


def _angles(X, Y):
    """Cosines, angles and sines between unit rows of X (n, d) and Y (m, d); zero rows give t = pi/2."""
    rho = (X @ Y.T).clamp(-1.0, 1.0)
    return rho, torch.arccos(rho), torch.sqrt((1.0 - rho * rho).clamp_min(0.0))


def relu_grad_hess(a: torch.Tensor, W: torch.Tensor, b: torch.Tensor, U: torch.Tensor, energy: torch.Tensor):
    """Loss, Riemannian gradient (M + M(d-1),) and Hessian in the coordinates ``(delta b, B_j^T delta u_j)``.

    ``a`` (N,), ``W`` (N, d): the target; ``b`` (M,) output weights; ``U`` (M, d) unit directions.
    """
    M, d = U.shape
    dt, dev = U.dtype, U.device
    nw = W.norm(dim=1)
    What = W / torch.where(nw > 0, nw, torch.ones_like(nw))[:, None]
    an = a * nw  # a_i |w_i|
    rho, t, sin = _angles(What, U)  # (N, M)
    # Cross term h_j = sum_i a_i K(w_i, u_j) and its derivatives.
    h = (an[:, None] * (sin + (math.pi - t) * rho)).sum(0) / TWO_PI
    s = (an[:, None] * sin).sum(0) / TWO_PI  # (M,)
    grad_h = U * s[:, None] + ((a[:, None] * (math.pi - t)).T @ W) / TWO_PI  # (M, d)
    safe = sin > 1e-12
    gamma = torch.where(safe, an[:, None] / (TWO_PI * torch.where(safe, sin, torch.ones_like(sin))),
                        torch.zeros_like(sin))  # (N, M)
    B = tangent_bases(U)  # (M, d, d-1)
    # Gram among the compressed units (unit vectors, G_jj = 1/2).
    r_uu, t_uu, s_uu = _angles(U, U)
    eye = torch.eye(M, dtype=torch.bool, device=dev)
    t_uu = torch.where(eye, torch.zeros_like(t_uu), t_uu)
    s_uu = torch.where(eye, torch.zeros_like(s_uu), s_uu)
    r_uu = torch.where(eye, torch.ones_like(r_uu), r_uu)
    G = (s_uu + (math.pi - t_uu) * r_uu) / TWO_PI
    loss = energy - 2.0 * (b * h).sum() + b @ G @ b
    off = ~eye
    bo = b[None, :] * off  # b_k for k != j, zero on the diagonal
    # grad_1 K(u_j, u_k) = (sin t u_j + (pi - t) u_k) / (2 pi): (M, M, d)
    g1 = (s_uu[:, :, None] * U[:, None, :] + (math.pi - t_uu)[:, :, None] * U[None, :, :]) / TWO_PI
    g1 = g1 * off[:, :, None]
    sum_g1 = (bo[:, :, None] * g1).sum(1)  # sum_{k != j} b_k grad_1 K(u_j, u_k)
    grad_b = -2.0 * h + 2.0 * (G @ b)
    euc_u = 2.0 * b[:, None] * (-grad_h + sum_g1)  # Euclidean gradient in u_j (G_jj held at 1/2)
    grad_u = torch.einsum("mdk,md->mk", B, euc_u)
    radial = (U * euc_u).sum(1)  # u_j . grad
    P = M + M * (d - 1)
    k1 = d - 1
    H = torch.zeros(P, P, dtype=dt, device=dev)
    H[:M, :M] = 2.0 * G
    eye_k = torch.eye(k1, dtype=dt, device=dev)
    UB = torch.einsum("jdk,nd->jnk", B, U)  # UB[j, k] = B_j^T u_k: tangent part of u_k at u_j (zero for k = j)
    # b_k with u_j: B_j^T (2 b_j grad_1 K(u_j, u_k)) for k != j; b_j with u_j: B_j^T 2(-grad h_j + sum_g1_j).
    C = torch.einsum("jdk,jnd->njk", B, 2.0 * b[:, None, None] * g1)  # (k, j, k1); g1 vanishes for k = j
    C[torch.arange(M), torch.arange(M)] = torch.einsum("jdk,jd->jk", B, 2.0 * (-grad_h + sum_g1))
    H[:M, M:] = C.reshape(M, M * k1)
    H[M:, :M] = H[:M, M:].T
    # u_j with u_j: -2 b_j hess h_j + 2 b_j sum_k b_k hess_11 K(u_j, u_k), projected, minus the radial term.
    WB = torch.einsum("nd,jdk->njk", What, B)  # (N, M, d-1): tangent components of the target directions
    hess_h = s[:, None, None] * eye_k + torch.einsum("njk,njl->jkl", WB * gamma[:, :, None], WB)
    big = s_uu > 1e-12
    cb = b[None, :] * off  # b_k for k != j
    inv = torch.where(big, cb / (TWO_PI * torch.where(big, s_uu, torch.ones_like(s_uu))), torch.zeros_like(s_uu))
    hess_g = ((cb * s_uu).sum(1) / TWO_PI)[:, None, None] * eye_k + torch.einsum("jn,jnk,jnl->jkl", inv, UB, UB)
    diag = 2.0 * b[:, None, None] * (-hess_h + hess_g) - radial[:, None, None] * eye_k  # (M, k1, k1)
    # u_j with u_k (j != k): 2 b_j b_k B_j^T hess_12 K(u_j, u_k) B_k. With B_j^T u_j = 0 the rank-one terms
    # st (u_k u_j^T + e_j e_k^T) project to (st + rho^2 / st) UB[j, k] UB[k, j]^T.
    coef = torch.where(big, s_uu + r_uu * r_uu / torch.where(big, s_uu, torch.ones_like(s_uu)), s_uu)
    BtB = torch.einsum("jdk,ndl->jnkl", B, B)
    mix = (math.pi - t_uu)[:, :, None, None] * BtB + coef[:, :, None, None] * torch.einsum("jnk,njl->jnkl", UB, UB)
    blocks = (2.0 * b[:, None] * b[None, :] * off / TWO_PI)[:, :, None, None] * mix  # (M, M, k1, k1)
    blocks[torch.arange(M), torch.arange(M)] = diag
    H[M:, M:] = blocks.permute(0, 2, 1, 3).reshape(M * k1, M * k1)
    grad = torch.cat([grad_b, grad_u.reshape(-1)])
    return loss, grad, 0.5 * (H + H.T), B
