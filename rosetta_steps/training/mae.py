"""Masked autoencoding (MAE): a ViT encoder sees a quarter of the patches, a small decoder
repaints the rest. Only the encoder joins the zoo.

The targets are the patches' raw pixels, not MAE's per-patch normalised ones: normalising
removes each patch's mean colour, and colour is half of the shapes world's labels (with it,
the first zoo's encoder probed worse for colour than its untrained twin, 0.74 against 0.79).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block, VisionTransformer
from torch import nn

from . import data
from .evaluate import probe_report
from .loop import TrainSettings, cosine_adamw, loss_summary, optimise

MASK_RATIO = 0.75


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """[batch, 3, H, W] -> [batch, patches, patch * patch * 3] in row-major patch order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // patch) * (w // patch), -1)


def encode_visible(vit: VisionTransformer, x: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """The encoder on the kept patches only: [batch, 1 + kept, dim] (class token first)."""
    prefix = vit.num_prefix_tokens
    tokens = vit.patch_embed(x) + vit.pos_embed[:, prefix:]
    tokens = torch.gather(tokens, 1, keep[..., None].expand(-1, -1, tokens.shape[-1]))
    cls = (vit.cls_token + vit.pos_embed[:, :prefix]).expand(x.shape[0], -1, -1)
    return vit.norm(vit.blocks(vit.norm_pre(torch.cat([cls, tokens], dim=1))))


class Decoder(nn.Module):
    """Fills the masked positions with a learned token and predicts every patch's pixels."""

    def __init__(self, patches: int, enc_dim: int, patch: int, dim: int = 64, depth: int = 2):
        super().__init__()
        self.embed = nn.Linear(enc_dim, dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(0.02 * torch.randn(1, patches + 1, dim))
        self.blocks = nn.Sequential(*[Block(dim, num_heads=2) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.pred = nn.Linear(dim, patch * patch * 3)

    def forward(self, encoded: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        x = self.embed(encoded)
        b, dim = x.shape[0], x.shape[-1]
        full = self.mask_token.expand(b, self.pos.shape[1] - 1, dim).clone()
        full = full.scatter(1, keep[..., None].expand(-1, -1, dim), x[:, 1:])
        x = torch.cat([x[:, :1], full], dim=1) + self.pos
        return self.pred(self.norm(self.blocks(x)))[:, 1:]


def train_mae(vit: VisionTransformer, settings: TrainSettings) -> dict:
    """Train a timm ViT as an MAE encoder; linear-probe its pooled patch tokens afterwards."""
    untrained = copy.deepcopy(vit)
    g = torch.Generator().manual_seed(settings.seed)
    images, labels = data.labelled(settings.pool, settings.seed)
    patch = vit.patch_embed.patch_size[0]
    n = vit.patch_embed.num_patches
    kept = max(1, round(n * (1 - MASK_RATIO)))
    decoder = Decoder(n, vit.embed_dim, patch)
    vit.train()

    def masked_loss(encoder: VisionTransformer, x: torch.Tensor, gen: torch.Generator
                    ) -> torch.Tensor:
        order = torch.rand(len(x), n, generator=gen).argsort(dim=1)
        keep, masked = order[:, :kept], order[:, kept:]
        target = patchify(x, patch)
        pred = decoder(encode_visible(encoder, x, keep), keep)
        pick = masked[..., None].expand(-1, -1, pred.shape[-1])
        return F.mse_loss(pred.gather(1, pick), target.gather(1, pick))

    def loss_fn(idx: torch.Tensor) -> torch.Tensor:
        return masked_loss(vit, images[idx], g)

    params = list(vit.parameters()) + list(decoder.parameters())
    opt, sched = cosine_adamw(params, settings.lr, settings.steps, betas=(0.9, 0.95))
    batches = data.index_batches(settings.pool, settings.batch_size, settings.steps, g)
    losses = optimise(loss_fn, batches, opt, sched, settings.steps, "shapes-vit-mae")
    vit.eval()
    decoder.eval()
    test_x, _ = data.held_out(settings.eval_images, settings.seed)
    with torch.no_grad():  # the same masks for both encoders, with the trained decoder
        held_out = {key: masked_loss(enc, test_x, torch.Generator().manual_seed(0)).item()
                    for key, enc in (("held_out_loss", vit),
                                     ("held_out_loss_untrained_encoder", untrained))}
    return {**loss_summary(losses), **held_out,
            **probe_report(vit, untrained, images, labels, settings.seed,
                            settings.eval_images)}
