"""Adversarial training of the shapes generator (hinge loss, spectrally normalised critic).

The discriminator is a strided CNN with spectral normalisation and LeakyReLU (SNGAN), which
keeps it from overpowering the small generator in a short CPU run; it is thrown away after
training. Real images are drawn from a rendered pool of the shapes world.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from . import data
from .loop import TrainSettings, loss_summary
from .resume import Checkpoint

DISC_WIDTH = 32
CRITIC_LR_FACTOR = 2  # two time-scale update rule: the critic learns 2x faster than G
EMA_DECAY = 0.999  # the returned generator is a moving average of its weights
NAME = "shapes-gan"

def discriminator(width: int = DISC_WIDTH) -> nn.Module:
    """64 px image -> one score: four stride-2 convs (32, 16, 8, 4 px), then a 4x4 conv."""
    sn = nn.utils.parametrizations.spectral_norm
    layers: list[nn.Module] = []
    cin = 3
    for cout in (width, 2 * width, 4 * width, 8 * width):
        layers += [sn(nn.Conv2d(cin, cout, 4, 2, 1)), nn.LeakyReLU(0.2)]
        cin = cout
    layers += [sn(nn.Conv2d(cin, 1, 4, 1, 0)), nn.Flatten()]
    return nn.Sequential(*layers)

def train_gan(generator: nn.Module, settings: TrainSettings,
              checkpoint: Checkpoint | None = None) -> dict:
    """Alternate one critic and one generator step per batch (Adam, betas 0 and 0.9).

    `settings.lr` is the generator's rate, the critic's is CRITIC_LR_FACTOR times it. The
    weights returned are an exponential moving average of the generator's, which smooths out
    the last steps' oscillation (BatchNorm statistics are the live generator's). With
    `checkpoint`, the run goes on from its saved state, if any, and saves its own there.
    """
    g = torch.Generator().manual_seed(settings.seed)
    images, _ = data.labelled(settings.pool, settings.seed)
    images = images.contiguous(memory_format=torch.channels_last)
    disc = discriminator().to(memory_format=torch.channels_last)
    generator.to(memory_format=torch.channels_last).train()
    opt_g = torch.optim.Adam(generator.parameters(), settings.lr, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(disc.parameters(), CRITIC_LR_FACTOR * settings.lr,
                             betas=(0.0, 0.9))
    ema = [p.detach().clone() for p in generator.parameters()]
    batches = data.IndexBatches(settings.pool, settings.batch_size, g)
    d_losses, g_losses = [], []
    saved = checkpoint.load(NAME, settings) if checkpoint is not None else None
    if saved is not None:
        generator.load_state_dict(saved["generator"])
        disc.load_state_dict(saved["critic"])
        opt_g.load_state_dict(saved["opt_generator"])
        opt_d.load_state_dict(saved["opt_critic"])
        torch._foreach_copy_(ema, saved["ema"])
        g.set_state(saved["rng"])
        batches.load_state_dict(saved["batches"])
        d_losses, g_losses = saved["d_losses"], saved["g_losses"]
    done = len(d_losses)
    bar = tqdm(range(done, settings.steps), initial=done, total=settings.steps, desc=NAME,
               unit="step", mininterval=1.0)
    for step in bar:
        idx = next(batches)
        z = torch.randn(len(idx), generator.z_dim, generator=g)
        fake = generator(z)
        d_loss = F.relu(1 - disc(images[idx])).mean() + F.relu(1 + disc(fake.detach())).mean()
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = -disc(fake).mean()
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        with torch.no_grad():
            torch._foreach_lerp_(ema, [p.detach() for p in generator.parameters()], 1 - EMA_DECAY)
        d_losses.append(d_loss.item())
        g_losses.append(g_loss.item())
        bar.set_postfix(d=f"{d_losses[-1]:.3f}", g=f"{g_losses[-1]:.3f}", refresh=False)
        if checkpoint is not None and checkpoint.due(step + 1, settings.steps):
            checkpoint.save(NAME, settings, step + 1, generator=generator.state_dict(),
                            critic=disc.state_dict(), opt_generator=opt_g.state_dict(),
                            opt_critic=opt_d.state_dict(), ema=ema, rng=g.get_state(),
                            batches=batches.state_dict(), d_losses=d_losses,
                            g_losses=g_losses)
    with torch.no_grad():
        for p, average in zip(generator.parameters(), ema, strict=True):
            p.copy_(average)
    generator.to(memory_format=torch.contiguous_format).eval()
    return {**loss_summary(d_losses, "d_loss"), **loss_summary(g_losses, "g_loss")}
