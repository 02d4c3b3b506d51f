"""Image quality metrics on tensors (B, 3, H, W) in [0, 1]."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio in dB per batch element, (B,); identical images give +inf."""
    mse = (x - y).pow(2).flatten(1).mean(dim=1)
    return 10.0 * torch.log10(1.0 / mse)


def _gaussian_window(size: int, sigma: float, channels: int, device, dtype) -> torch.Tensor:
    ax = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    g = g / g.sum()
    return (g[:, None] * g[None, :]).expand(channels, 1, size, size).contiguous()


def ssim(x: torch.Tensor, y: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Structural similarity (Wang et al. 2004, Gaussian 11x11 window) per batch element, (B,) in [-1, 1]."""
    c1, c2 = 0.01**2, 0.03**2
    ch = x.shape[1]
    w = _gaussian_window(window, sigma, ch, x.device, x.dtype)
    mu_x = F.conv2d(x, w, groups=ch)
    mu_y = F.conv2d(y, w, groups=ch)
    sxx = F.conv2d(x * x, w, groups=ch) - mu_x**2
    syy = F.conv2d(y * y, w, groups=ch) - mu_y**2
    sxy = F.conv2d(x * y, w, groups=ch) - mu_x * mu_y
    num = (2 * mu_x * mu_y + c1) * (2 * sxy + c2)
    den = (mu_x**2 + mu_y**2 + c1) * (sxx + syy + c2)
    return (num / den).flatten(1).mean(dim=1)


_LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))
_LUMA = (0.299, 0.587, 0.114)


def laplacian(x: torch.Tensor) -> torch.Tensor:
    """4-neighbour Laplacian of the luma (Rec. 601): images (B, 3, H, W) in [0, 1] -> (B, 1, H-2, W-2).

    Interior pixels only (no padding): a flat image gives 0, a one-pixel black/white
    checkerboard +-4 everywhere.
    """
    luma = (x * x.new_tensor(_LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    return F.conv2d(luma, x.new_tensor(_LAPLACIAN).view(1, 1, 3, 3))


def laplacian_variance(x: torch.Tensor) -> torch.Tensor:
    """Sharpness: variance of :func:`laplacian` per image, (B,) >= 0.

    Images (B, 3, H, W) in [0, 1]. A flat image gives 0; a one-pixel black/white
    checkerboard gives 16 (the Laplacian is +-4 everywhere).
    """
    return laplacian(x).flatten(1).var(dim=1, unbiased=False)


def shift_images(x: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Images (B, C, H, W) moved by ``shifts`` (B, 2) pixels, (dx, dy) with +x right and +y down;
    bilinear, the border replicated."""
    b, _, h, w = x.shape
    theta = torch.zeros(b, 2, 3, dtype=x.dtype, device=x.device)
    theta[:, 0, 0] = theta[:, 1, 1] = 1.0
    # affine_grid samples the output at theta @ (position): moving the content by +d samples at -d
    theta[:, 0, 2] = -2.0 * shifts[:, 0].to(x.dtype) / w
    theta[:, 1, 2] = -2.0 * shifts[:, 1].to(x.dtype) / h
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def placement_shift(generated: torch.Tensor, real: torch.Tensor, max_shift: int = 3,
                    step: float = 0.125) -> torch.Tensor:
    """Per image, the translation (dx, dy) in pixels that best moves ``generated`` onto ``real``,
    (B, 2): the shift of least mean squared difference, searched over whole pixels up to
    ``max_shift`` and then to ``step`` around the best of those.

    Images (B, 3, H, W) in [0, 1]. It tells a misplaced picture from a wrong one: PSNR punishes an
    outline drawn one pixel off about as much as a missing detail, and ``psnr(shift_images(g,
    placement_shift(g, r)), r)`` is what the same frames would score if placed exactly.
    """
    def best(g: torch.Tensor, r: torch.Tensor, centre: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        cand = centre + offsets  # (K, 2)
        moved = shift_images(g.expand(len(cand), -1, -1, -1), cand)
        return cand[(moved - r).pow(2).flatten(1).mean(1).argmin()]

    whole = torch.arange(-max_shift, max_shift + 1, dtype=torch.float32)
    frac = torch.arange(-0.5, 0.5 + step / 2, step, dtype=torch.float32)
    grids = [torch.cartesian_prod(v, v) for v in (whole, frac)]  # (dx, dy) pairs
    out = []
    for g, r in zip(generated.float().cpu(), real.float().cpu()):
        c = best(g[None], r[None], torch.zeros(2), grids[0])
        out.append(best(g[None], r[None], c, grids[1]))
    return torch.stack(out) if out else torch.zeros(0, 2)


def kernel_distance(x, y) -> float:
    """Kernel distance (KID; Binkowski et al. 2018) between two sets of feature vectors: the unbiased
    squared maximum mean discrepancy under the polynomial kernel k(a, b) = (a.b / d + 1)^3.

    x: (n, d), y: (m, d) arrays, n, m >= 2. 0 in expectation when both sets come from one
    distribution, larger the further apart they are; an estimate can be slightly negative.
    """
    import numpy as np

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n, m, d = len(x), len(y), x.shape[1]
    if n < 2 or m < 2:
        raise ValueError("kernel_distance needs at least two vectors on each side")
    kxx, kyy, kxy = ((x @ x.T) / d + 1) ** 3, ((y @ y.T) / d + 1) ** 3, ((x @ y.T) / d + 1) ** 3
    return float((kxx.sum() - np.trace(kxx)) / (n * (n - 1)) + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
                 - 2 * kxy.mean())
