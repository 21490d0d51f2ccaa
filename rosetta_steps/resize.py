"""Bilinear resizing as small matrices, so that Eq. 1-2 never materialise upsampled maps.

The paper compares two activation maps after bilinearly resizing both to the larger of their
sizes. With `align_corners=False` that resize is separable and linear: an s x s map X becomes
U X U^T, where U is the (m x s) 1-D interpolation matrix. Hence, for a large map Y (m x m),

    <U X U^T, Y> = <X, U^T Y U>              (cross products at the small size)
    sum(U X U^T) = w^T X w,  w = U^T 1       (sums)
    |U X U^T|^2  = <A X A, X>, A = U^T U     (sums of squares)

The matrices come from torch's own `interpolate`, so they agree with it to the last bit of
float64 rounding.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F


@cache
def _upsample_matrix_cpu(src: int, dst: int) -> torch.Tensor:
    basis = torch.eye(src, dtype=torch.float64).reshape(src, 1, src)
    out = F.interpolate(basis, size=dst, mode="linear", align_corners=False)
    return out[:, 0, :].T.contiguous()


def upsample_matrix(src: int, dst: int, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (dst x src) matrix of 1-D linear interpolation, align_corners=False."""
    if src < 1 or dst < src:
        raise ValueError(f"only upsampling is folded: src={src}, dst={dst}")
    return _upsample_matrix_cpu(src, dst).to(device=device, dtype=dtype)


def _times(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """x [..., s] @ m [s, p] as one GEMM (a broadcast 2-D left operand would be many small ones)."""
    return (x.reshape(-1, x.shape[-1]) @ m).reshape(*x.shape[:-1], m.shape[1])


def project_down(y: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """U^T Y U for maps y [..., m, m] and an (m x s) upsampling matrix: the adjoint of resizing."""
    return _times(_times(y, u).mT.contiguous(), u).mT


def upsampled_sums(x: torch.Tensor, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sum and sum of squares of U X U^T over the batch, from x [c, batch, s, s]."""
    w = u.sum(dim=0)
    total = x.sum(dim=1) @ w @ w
    a = u.T @ u
    axa_t = _times(_times(x, a).mT.contiguous(), a)  # (A X A)^T, as A is symmetric
    squares = (axa_t * x.mT).sum(dim=(1, 2, 3))
    return total, squares
