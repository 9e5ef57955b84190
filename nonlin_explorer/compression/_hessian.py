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
    H = torch.zeros(P, P, dtype=dt, device=dev)
    H[:M, :M] = 2.0 * G
    k1 = d - 1
    for j in range(M):
        sj = slice(M + j * k1, M + (j + 1) * k1)
        Bj = B[j]
        # b_j with u_j, and b_k with u_j (k != j).
        H[j, sj] = H[sj, j] = Bj.T @ (2.0 * (-grad_h[j] + sum_g1[j]))
        for k in range(M):
            if k != j:
                H[k, sj] = H[sj, k] = Bj.T @ (2.0 * b[j] * g1[j, k])
        # u_j with u_j: -2 b_j hess h_j + 2 b_j sum_k b_k hess_11 K(u_j, u_k), projected, minus radial term.
        WB = What @ Bj  # (N, d-1): tangent components of the target directions
        hess_h = s[j] * torch.eye(k1, dtype=dt, device=dev) + WB.T @ (gamma[:, j:j + 1] * WB)
        hess_g = torch.zeros(k1, k1, dtype=dt, device=dev)
        for k in range(M):
            if k == j or float(b[k]) == 0.0:
                continue
            st = s_uu[j, k]
            ub = Bj.T @ U[k]  # tangent part of u_k
            term = st / TWO_PI * torch.eye(k1, dtype=dt, device=dev)
            if float(st) > 1e-12:
                term = term + torch.outer(ub, ub) / (TWO_PI * st)
            hess_g = hess_g + b[k] * term
        H[sj, sj] = 2.0 * b[j] * (-hess_h + hess_g) - radial[j] * torch.eye(k1, dtype=dt, device=dev)
        # u_j with u_k: 2 b_j b_k hess_12 K(u_j, u_k).
        for k in range(j + 1, M):
            sk = slice(M + k * k1, M + (k + 1) * k1)
            st, tt, rr = s_uu[j, k], t_uu[j, k], r_uu[j, k]
            mix = (math.pi - tt) * torch.eye(d, dtype=dt, device=dev) + st * torch.outer(U[k], U[j])
            if float(st) > 1e-12:
                e_j = (U[j] - rr * U[k]) / st  # e' for the row variable u_j
                e_k = (U[k] - rr * U[j]) / st
                mix = mix + st * torch.outer(e_j, e_k)
            blk = 2.0 * b[j] * b[k] * (Bj.T @ (mix / TWO_PI) @ B[k])
            H[sj, sk] = blk
            H[sk, sj] = blk.T
    grad = torch.cat([grad_b, grad_u.reshape(-1)])
    return loss, grad, 0.5 * (H + H.T), B
