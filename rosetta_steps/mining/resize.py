"""Bilinear resizing as small matrices, so that Eq. 1-2 never materialise upsampled maps.

The paper compares two activation maps after bilinearly resizing both to the larger of their
sizes. With `align_corners=False` that resize is separable and linear: an s x s map X becomes
U X U^T, where U is the (m x s) 1-D interpolation matrix. Hence, for a large map Y (m x m),

    <U X U^T, Y> = <X, U^T Y U>              (cross products at the small size)
    sum(U X U^T) = w^T X w,  w = U^T 1       (sums)
    |U X U^T|^2  = |L^T X L|^2, L L^T = U^T U (sums of squares; L is s x s, Cholesky)

The matrices come from torch's own `interpolate`, so they agree with it to the last bit of
float64 rounding. Products with a shared small matrix on the left are batched GEMMs, so no
map is ever transposed in memory; `out` arguments let a caller reuse buffers between batches.
"""

from __future__ import annotations

from functools import cache

import torch
import torch.nn.functional as F


@cache
def _matrices_cpu(src: int, dst: int) -> tuple[torch.Tensor, torch.Tensor]:
    basis = torch.eye(src, dtype=torch.float64).reshape(src, 1, src)
    u = F.interpolate(basis, size=dst, mode="linear", align_corners=False)[:, 0, :].T
    return u.contiguous(), torch.linalg.cholesky(u.T @ u)


def _checked(src: int, dst: int) -> tuple[torch.Tensor, torch.Tensor]:
    if src < 1 or dst < src:
        raise ValueError(f"only upsampling is folded: src={src}, dst={dst}")
    return _matrices_cpu(src, dst)


def upsample_matrix(src: int, dst: int, device: torch.device | str = "cpu",
                    dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (dst x src) matrix U of 1-D linear interpolation, align_corners=False."""
    return _checked(src, dst)[0].to(device=device, dtype=dtype)


def gram_factor(src: int, dst: int, device: torch.device | str = "cpu",
                dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """The (src x src) lower-triangular L with L L^T = U^T U for U = upsample_matrix(src, dst)."""
    return _checked(src, dst)[1].to(device=device, dtype=dtype)


def sandwich(x: torch.Tensor, left: torch.Tensor, right: torch.Tensor,
             scratch: torch.Tensor | None = None, out: torch.Tensor | None = None
             ) -> torch.Tensor:
    """left @ X @ right for every map x [..., a, b]: a batched GEMM sharing `left`, then one
    flat GEMM; `scratch` and `out` optionally hold the intermediate and the result."""
    z = torch.matmul(left, x, out=scratch)
    flat = torch.mm(z.reshape(-1, z.shape[-1]), right,
                    out=None if out is None else out.view(-1, right.shape[1]))
    return flat.view(*x.shape[:-2], left.shape[0], right.shape[1])


def project_down(y: torch.Tensor, u: torch.Tensor, scratch: torch.Tensor | None = None,
                 out: torch.Tensor | None = None) -> torch.Tensor:
    """U^T Y U for maps y [..., m, m] and an (m x s) upsampling matrix: the adjoint of resizing."""
    return sandwich(y, u.T, u, scratch, out)


def upsampled_sums(x: torch.Tensor, u: torch.Tensor, factor: torch.Tensor,
                   map_sums: torch.Tensor | None = None, scratch: torch.Tensor | None = None,
                   out: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel sum and sum of squares of U X U^T over the batch, from x [c, batch, s, s],
    with `factor` = gram_factor(s, m); `map_sums` is x summed over the batch, if known."""
    w = u.sum(dim=0)
    map_sums = x.sum(dim=1) if map_sums is None else map_sums
    total = map_sums @ w @ w
    halves = sandwich(x, factor.T, factor, scratch, out).view(x.shape[0], -1)
    return total, halves.square_().sum(dim=1)  # torch's cascaded sum: exact enough in float32
