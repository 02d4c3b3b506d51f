"""The contextual loss (Mechrez, Talmi, Zelnik-Manor, ECCV 2018).

For features X = {x_i} (generated) and Y = {y_j} (target), with mu_y the mean
of the y_j::

    d_ij  = 1 - cos(x_i - mu_y, y_j - mu_y)
    d~_ij = d_ij / (min_k d_ik + eps)
    w_ij  = exp((1 - d~_ij) / h)
    CX_ij = w_ij / sum_k w_ik
    CX    = (1/M) sum_j max_i CX_ij,        L_CX = -log CX

CX(X, X) = 1 (loss 0); unrelated sets give CX of order 1/M.

**CoBi** (contextual bilateral loss; Zhang, Chen, Ng, Koltun, "Zoom to Learn,
Learn to Zoom", CVPR 2019) adds where to what: with p_i, q_j the positions of
x_i and y_j (normalised to [0, 1] on each map),

    d_ij = 1 - cos(x_i - mu_y, y_j - mu_y) + w_s ||p_i - q_j||^2

and the rest unchanged. ``spatial_weight`` (w_s) = 0 is the paper's CX
exactly. The lean path needs no new code for it: with
x~_i = [x^_i, sqrt(2 w_s) p_i, -w_s |p_i|^2, 1] and
y~_j = [y^_j, sqrt(2 w_s) q_j, 1, -w_s |q_j|^2], x~_i . y~_j = 1 - d_ij, so
CoBi is the same blocked similarity on C + 4 columns.

Two implementations with the same value and gradient:

* :func:`contextual_loss_reference` materialises the N x M matrices (simple,
  O(N*M) memory; kept for tests and benchmarks).
* :func:`contextual_loss` (the default) processes rows of the similarity in
  blocks inside a custom autograd function. Forward keeps, per row i, the
  best similarity and its column, and the softmax-weighted average
  V_i = sum_k CX_ik y^_k (one extra GEMM per block, like attention's P.V); per
  column j, the max over rows and its row. Backward then needs no N x M work
  at all when only x needs a gradient (the usual case: the target is fixed);
  when y needs one too, the row blocks are recomputed. Peak extra memory is
  O(N*C + block*M) instead of O(N*M).

Both compute the similarity in float32 (float64 if given float64) even under
autocast, since the d/min(d) ratio amplifies rounding error.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from puppet.losses.base import weighted_sum

# Elements of one block of the similarity (B x rows x M) on a CPU: 1M floats = 4 MB, which
# measured fastest on a 2-core CPU (256 rows at N = 4096; larger blocks leave cache).
_BLOCK_ELEMS = 1 << 20
# On a GPU, blocks only cost launches: use one block when a quarter of the free memory
# (at most 2 GiB) holds the block's float32 temporaries (similarity, softmax, one spare).
_GPU_BUDGET_BYTES = 2 << 30
_TEMPORARIES = 3


def _center_normalize(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) feature maps -> unit-norm rows x^ (B, N, C), y^ (B, M, C), centred on mean(y)."""
    if x.dim() != 4 or y.dim() != 4 or x.shape[:2] != y.shape[:2]:
        raise ValueError(f"expected feature maps (B, C, H, W) with equal B and C, got {tuple(x.shape)} and "
                         f"{tuple(y.shape)}")
    xs = x.flatten(2)
    ys = y.flatten(2)
    mu = ys.mean(dim=2, keepdim=True)
    xh = F.normalize(xs - mu, dim=1).transpose(1, 2)
    yh = F.normalize(ys - mu, dim=1).transpose(1, 2)
    return xh, yh


def _compute_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def grid_positions(height: int, width: int, device=None, dtype=torch.float32) -> torch.Tensor:
    """Pixel-centre positions of an H x W map, row-major, in [0, 1]: (H*W, 2) as (row, column)."""
    r = (torch.arange(height, device=device, dtype=dtype) + 0.5) / height
    c = (torch.arange(width, device=device, dtype=dtype) + 0.5) / width
    return torch.stack(torch.meshgrid(r, c, indexing="ij"), dim=-1).reshape(-1, 2)


Positions = tuple[torch.Tensor, torch.Tensor]  # (N, 2) positions of x, (M, 2) positions of y, in [0, 1]


def _positions(x: torch.Tensor, y: torch.Tensor, positions: Positions | None, dtype) -> Positions:
    if positions is not None:
        px, py = positions
        if px.shape != (x.shape[2] * x.shape[3], 2) or py.shape != (y.shape[2] * y.shape[3], 2):
            raise ValueError(f"positions {tuple(px.shape)}, {tuple(py.shape)} do not match feature maps "
                             f"{tuple(x.shape)}, {tuple(y.shape)}")
        return px.to(x.device, dtype), py.to(y.device, dtype)
    return grid_positions(*x.shape[2:], x.device, dtype), grid_positions(*y.shape[2:], y.device, dtype)


def _spatial_augment(xh: torch.Tensor, yh: torch.Tensor, w_s: float, px: torch.Tensor,
                     py: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Append position columns so that x~ . y~ = x^ . y^ - w_s ||p - q||^2 (see module docstring)."""
    b = xh.shape[0]
    r = (2.0 * w_s) ** 0.5
    ax = torch.cat([r * px, -w_s * px.pow(2).sum(1, keepdim=True), torch.ones_like(px[:, :1])], dim=1)
    ay = torch.cat([r * py, torch.ones_like(py[:, :1]), -w_s * py.pow(2).sum(1, keepdim=True)], dim=1)
    return (torch.cat([xh, ax.unsqueeze(0).expand(b, -1, -1)], dim=2),
            torch.cat([yh, ay.unsqueeze(0).expand(b, -1, -1)], dim=2))


def contextual_similarity_reference(x: torch.Tensor, y: torch.Tensor, h: float = 0.5,
                                    eps: float = 1e-5, spatial_weight: float = 0.0,
                                    positions: Positions | None = None) -> torch.Tensor:
    """CX (or CoBi, with ``spatial_weight`` > 0) per batch element, straight from the formula.

    Args:
        x, y: feature maps (B, C, H, W) and (B, C, H', W'), any real values.
        spatial_weight: w_s of CoBi; 0 = the paper's CX.
        positions: (N, 2) and (M, 2) positions in [0, 1] of the x and y features
            (default: each map's own pixel grid).
    Returns:
        (B,) tensor in (0, 1].
    """
    dt = _compute_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        xh, yh = _center_normalize(x.to(dt), y.to(dt))
        d = 1.0 - torch.bmm(xh, yh.transpose(1, 2))  # (B, N, M)
        if spatial_weight > 0:
            px, py = _positions(x, y, positions, dt)
            d = d + spatial_weight * (px[:, None, :] - py[None, :, :]).pow(2).sum(-1).unsqueeze(0)
        d_tilde = d / (d.min(dim=2, keepdim=True).values + eps)
        w = torch.exp((1.0 - d_tilde) / h)
        cx = w / w.sum(dim=2, keepdim=True)
        return cx.max(dim=1).values.mean(dim=1)


def contextual_loss_reference(x: torch.Tensor, y: torch.Tensor, h: float = 0.5, eps: float = 1e-5,
                              spatial_weight: float = 0.0, positions: Positions | None = None) -> torch.Tensor:
    """-log CX(X, Y) (CoBi with ``spatial_weight`` > 0), mean over the batch; O(N*M) memory. Scalar >= 0."""
    return -torch.log(contextual_similarity_reference(x, y, h, eps, spatial_weight, positions)).mean()


def block_budget(device: torch.device) -> int:
    """Similarity elements one block may hold on ``device``: cache-sized on a CPU, memory-sized on a GPU."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(min(free // 4, _GPU_BUDGET_BYTES) // (4 * _TEMPORARIES))
    return _BLOCK_ELEMS


def block_rows(batch: int, n: int, m: int, budget: int) -> int:
    """Rows per block of the (batch, n, m) similarity for a budget of ``budget`` elements.

    All n rows (one block) when they fit; never fewer than 64 rows (tiny blocks waste GEMM time).
    """
    return int(max(1, min(n, max(64, budget // max(1, batch * m)))))


def _auto_block(batch: int, n: int, m: int, device: torch.device = torch.device("cpu")) -> int:
    return block_rows(batch, n, m, block_budget(device))


def _softmax_rows(s: torch.Tensor, smax: torch.Tensor, h: float, eps: float) -> torch.Tensor:
    """In place: similarity rows s (B, b, M) -> CX rows.

    z_ik = (1 - (1 - s_ik)/(m_i + eps))/h with m_i = 1 - max_k s_ik; after
    subtracting the row max the constant part cancels, leaving
    exp((s_ik - max_k s_ik) / (h (m_i + eps))).
    """
    beta = 1.0 / (h * ((1.0 - smax) + eps))
    # Clamp before exp: e^-80 is negligible beside the row maximum (e^0 = 1), and denormal
    # intermediates are ~10x slower on x86 CPUs.
    s.sub_(smax.unsqueeze(2)).mul_(beta.unsqueeze(2)).clamp_(min=-80.0).exp_()
    s.div_(s.sum(dim=2, keepdim=True))
    return s


class _LeanContextual(torch.autograd.Function):
    """CX per batch element from unit rows x^ (B, N, C), y^ (B, M, C); see module docstring."""

    @staticmethod
    def forward(ctx, xh, yh, h: float, eps: float, block: int):  # noqa: D102
        bsz, n, c = xh.shape
        m = yh.shape[1]
        need_v = xh.requires_grad or yh.requires_grad
        yt = yh.transpose(1, 2)
        smax = xh.new_empty(bsz, n)
        kstar = torch.empty(bsz, n, dtype=torch.long, device=xh.device)
        colmax = xh.new_full((bsz, m), -1.0)
        colarg = torch.zeros(bsz, m, dtype=torch.long, device=xh.device)
        v = xh.new_empty(bsz, n, c) if need_v else None
        for r0 in range(0, n, block):
            r1 = min(n, r0 + block)
            s = torch.bmm(xh[:, r0:r1], yt)
            sm, ks = s.max(dim=2)
            smax[:, r0:r1] = sm
            kstar[:, r0:r1] = ks
            p = _softmax_rows(s, sm, h, eps)
            bm, bi = p.max(dim=1)
            better = bm > colmax
            colmax = torch.where(better, bm, colmax)
            colarg = torch.where(better, bi + r0, colarg)
            if v is not None:
                v[:, r0:r1] = torch.bmm(p, yh)
        ctx.save_for_backward(xh, yh, smax, kstar, colmax, colarg, v)
        ctx.h, ctx.eps, ctx.block = h, eps, block
        return colmax.mean(dim=1)

    @staticmethod
    def backward(ctx, gcx):  # noqa: D102
        xh, yh, smax, kstar, colmax, colarg, v = ctx.saved_tensors
        h, eps, block = ctx.h, ctx.eps, ctx.block
        bsz, n, c = xh.shape
        m = yh.shape[1]
        # dCX/dCX_{r_j, j} = 1/M for the argmax row r_j of each column j.
        gcol = (gcx / m).unsqueeze(1) * colmax  # (B, M): g * CX_{r_j j}
        arg_c = colarg.unsqueeze(2).expand(-1, -1, c)
        s_row = xh.new_zeros(bsz, n).scatter_add_(1, colarg, gcol)  # s_i = sum_j g_ij CX_ij
        a_row = xh.new_zeros(bsz, n, c).scatter_add_(1, arg_c, gcol.unsqueeze(2) * yh)
        x_at_col = torch.gather(xh, 1, arg_c)  # x^_{r_j} (B, M, C)
        d_col = 1.0 - (x_at_col * yh).sum(dim=2)  # d_{r_j j}
        dg_row = xh.new_zeros(bsz, n).scatter_add_(1, colarg, gcol * d_col)
        d_mean = 1.0 - (xh * v).sum(dim=2)  # sum_k CX_ik d_ik, since sum_k CX_ik = 1
        mpe = (1.0 - smax) + eps  # m_i + eps
        inv = 1.0 / (h * mpe)  # dz_ik / ds_ik
        e_row = (dg_row - s_row * d_mean) * inv / mpe  # gradient through m_i = min_k d_ik
        arg_k = kstar.unsqueeze(2).expand(-1, -1, c)
        gx = gy = None
        if ctx.needs_input_grad[0]:
            gx = (a_row - s_row.unsqueeze(2) * v) * inv.unsqueeze(2) - e_row.unsqueeze(2) * torch.gather(yh, 1, arg_k)
        if ctx.needs_input_grad[1]:
            gy = (gcol * torch.gather(inv, 1, colarg)).unsqueeze(2) * x_at_col
            u = (s_row * inv).unsqueeze(2) * xh
            yt = yh.transpose(1, 2)
            for r0 in range(0, n, block):
                r1 = min(n, r0 + block)
                s = torch.bmm(xh[:, r0:r1], yt)
                p = _softmax_rows(s, smax[:, r0:r1], h, eps)
                gy = gy - torch.bmm(p.transpose(1, 2), u[:, r0:r1])
            gy = gy.scatter_add(1, arg_k, -e_row.unsqueeze(2) * xh)
        return gx, gy, None, None, None


def contextual_similarity(x: torch.Tensor, y: torch.Tensor, h: float = 0.5, eps: float = 1e-5,
                          block_size: int | None = None, spatial_weight: float = 0.0,
                          positions: Positions | None = None) -> torch.Tensor:
    """CX(X, Y) (CoBi with ``spatial_weight`` > 0) per batch element, memory-lean.

    Equals :func:`contextual_similarity_reference` in value and gradient.

    Args:
        x, y: feature maps (B, C, H, W) and (B, C, H', W').
        block_size: rows of the similarity per block (default: ~4 MB blocks).
        spatial_weight, positions: as in :func:`contextual_similarity_reference`.
    Returns:
        (B,) tensor in (0, 1], differentiable w.r.t. x and y.
    """
    dt = _compute_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        xh, yh = _center_normalize(x.to(dt), y.to(dt))
        if spatial_weight > 0:
            xh, yh = _spatial_augment(xh, yh, spatial_weight, *_positions(x, y, positions, dt))
        block = block_size or _auto_block(xh.shape[0], xh.shape[1], yh.shape[1], xh.device)
        return _LeanContextual.apply(xh.contiguous(), yh.contiguous(), h, eps, block)


def contextual_loss(x: torch.Tensor, y: torch.Tensor, h: float = 0.5, eps: float = 1e-5,
                    block_size: int | None = None, spatial_weight: float = 0.0,
                    positions: Positions | None = None) -> torch.Tensor:
    """L_CX = -log CX(X, Y), mean over the batch (memory-lean); CoBi when ``spatial_weight`` > 0.

    Args:
        x: generated features (B, C, H, W).
        y: target features (B, C, H', W').
        h: bandwidth (paper: 0.5). eps: the paper's 1e-5.
        spatial_weight: CoBi's w_s on squared distances of positions in [0, 1]; 0 = CX.
        positions: (N, 2), (M, 2) positions of x and y (default: each map's pixel grid).
    Returns:
        scalar tensor >= 0 (0 iff every y_j has a distinct exact match).
    """
    return -torch.log(contextual_similarity(x, y, h, eps, block_size, spatial_weight, positions)).mean()


def sample_positions(x: torch.Tensor, y: torch.Tensor, max_side: int,
                     generator: torch.Generator | None = None,
                     with_positions: bool = False):
    """Keep at most ``max_side**2`` random positions, the same ones in x and y.

    The authors sample 65x65 positions per layer above that size. Returns
    (B, C, K, 1) maps (K = kept positions); inputs at or below the limit, or
    ``max_side <= 0``, or maps of different sizes are returned unchanged.
    With ``with_positions`` also returns the kept positions ((K, 2), (K, 2)
    in [0, 1], see :func:`grid_positions`) for CoBi.
    """
    n = x.shape[2] * x.shape[3]
    k = max_side * max_side
    if max_side <= 0 or n <= k or x.shape[2:] != y.shape[2:]:
        if with_positions:
            return x, y, (grid_positions(*x.shape[2:], x.device), grid_positions(*y.shape[2:], y.device))
        return x, y
    idx = torch.randperm(n, generator=generator, device="cpu")[:k].to(x.device)
    xs, ys = x.flatten(2)[:, :, idx].unsqueeze(3), y.flatten(2)[:, :, idx].unsqueeze(3)
    if with_positions:
        p = grid_positions(*x.shape[2:], x.device)[idx]
        return xs, ys, (p, p)
    return xs, ys


def contextual_loss_layers(fx: dict[str, torch.Tensor], fy: dict[str, torch.Tensor],
                           layer_weights: dict[str, float], h: float = 0.5, eps: float = 1e-5,
                           max_side: int = 65, generator: torch.Generator | None = None,
                           spatial: dict[str, float] | None = None) -> torch.Tensor:
    """sum_l w_l L_CX(fx[l], fy[l]) over named feature maps (e.g. VGG conv3_2, conv4_2, rgb5_d4).

    ``spatial`` maps a layer to its CoBi weight w_s (missing or 0: plain CX).
    """
    spatial = spatial or {}

    def term(name: str) -> torch.Tensor:
        w_s = float(spatial.get(name, 0.0))
        a, b, pos = sample_positions(fx[name], fy[name], max_side, generator, with_positions=True)
        return contextual_loss(a, b, h, eps, spatial_weight=w_s, positions=pos)

    return weighted_sum(layer_weights, term, "contextual_loss_layers")


class ContextualLoss(nn.Module):
    """L_CX on feature maps: ``ContextualLoss()(x_feat, y_feat)`` -> scalar."""

    def __init__(self, h: float = 0.5, eps: float = 1e-5):
        super().__init__()
        self.h, self.eps = h, eps

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return contextual_loss(x, y, self.h, self.eps)


class VGGContextualLoss(nn.Module):
    """L_CX on images through a feature extractor that the caller passes in.

    ``extractor(img)`` must return ``{layer: (B, C, H, W)}`` (e.g. :class:`VGGFeatures`).
    ``forward(x, y)`` takes images (B, 3, H, W) in [0, 1]; ``y`` is treated as fixed.
    """

    def __init__(self, extractor: nn.Module, layer_weights: dict[str, float], h: float = 0.5,
                 eps: float = 1e-5, max_side: int = 65):
        super().__init__()
        self.extractor = extractor
        self.layer_weights = dict(layer_weights)
        self.h, self.eps, self.max_side = h, eps, max_side

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        fx = self.extractor(x)
        with torch.no_grad():
            fy = self.extractor(y)
        return contextual_loss_layers(fx, fy, self.layer_weights, self.h, self.eps, self.max_side)
