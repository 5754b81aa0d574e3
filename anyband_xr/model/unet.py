"""MCD U-Net: the masked-conditional x0 predictor with Conditional Adaptive Modulation (paper 3.1, Eq. 1; A.4).

Input: the noisy canonical residual ``x_t`` (N, K, H, W) and the context (N, 4K, H, W) of
``anyband_xr.conditioning.bridge.Condition.tensor``, its planes named in ``anyband_xr.conditioning.planes``: the
condition ``C``, the coverage ``M``, the bend hint ``D`` and the prior hint ``G``.
A light encoder (a per-pixel spectral MLP, then a 3x3 conv) maps the context to a context map ``h``;
every ResNet block modulates its normalised features as ``gamma(h) * GroupNorm(F) + beta(h)`` with ``h``
average-pooled to the block's resolution (spatially adaptive; gamma = 1, beta = 0 at initialisation).
Self-attention sits at the levels in ``attention_levels``.

The spectral axis (K = 211 canonical wavelengths) is much wider than the U-Net's feature maps, so the stem and the
output head are per-pixel MLPs of width ``spectral_hidden`` (1x1 convolutions with SiLU): the head sees the U-Net's
features *and* the raw ``(x_t, C, M, D, G)``, so a correction can be placed at any missing wavelength instead of in
the span of a few output filters. ``forward`` returns the network's estimate of ``x0`` (the clean residual) through
the zero-initialised head, so an untrained model returns the interpolant.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from anyband_xr.conditioning.bridge import GAIN
from anyband_xr.conditioning.planes import CONTEXT_PLANES, plane_channels
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.model.diffusion import LinearSchedule

#: The raw inputs the stem and the head see: the noisy residual, then the context's planes.
RAW_PLANES = ("x_t", *CONTEXT_PLANES)


@dataclass
class ModelConfig:
    """Architecture and diffusion schedule of an ``MCDUNet``.

    ``attention_levels`` are U-Net level indices (0 = full resolution): on 64x64 training patches with four levels,
    levels 2 and 3 are the paper's 16x16 and 8x8 attention resolutions.
    """

    channels: int = int(CANONICAL_NM.size)
    base_channels: int = 32
    channel_mults: tuple[int, ...] = (1, 2, 2)
    num_res_blocks: int = 1
    attention_levels: tuple[int, ...] = (2,)
    num_heads: int = 4
    dropout: float = 0.0
    cam_channels: int = 32
    time_embed: int = 128
    spectral_hidden: int = 256
    diffusion_steps: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02
    extra: dict = field(default_factory=dict)

    @classmethod
    def paper(cls) -> ModelConfig:
        """The paper's backbone (A.4): base 128, multipliers [1, 2, 4, 8], attention at 16x16 and 8x8, ~278M params."""
        return cls(
            base_channels=128,
            channel_mults=(1, 2, 4, 8),
            num_res_blocks=2,
            attention_levels=(2, 3),
            num_heads=8,
            dropout=0.1,
            cam_channels=256,
            time_embed=512,
            spectral_hidden=512,
        )

    @classmethod
    def default(cls) -> ModelConfig:
        """The shipped CPU-sized model: base 32, multipliers [1, 2, 2], one res block, attention at the lowest level."""
        return cls()

    @property
    def levels(self) -> int:
        """Number of resolution levels; inputs need H and W divisible by ``2 ** (levels - 1)``."""
        return len(self.channel_mults)

    def to_dict(self) -> dict:
        """JSON-serialisable form (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        """Inverse of ``to_dict``; unknown keys raise."""
        values = dict(data)
        for key in ("channel_mults", "attention_levels"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


def _groups(channels: int) -> int:
    for groups in (32, 16, 8, 4, 2):
        if channels % groups == 0:
            return groups
    return 1


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding (N, dim) of integer timesteps (N,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.to(torch.float32)[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def spectral_mlp(in_ch: int, hidden: int, out_ch: int) -> nn.Sequential:
    """Per-pixel two-layer MLP across channels: 1x1 conv ``in_ch -> hidden``, SiLU, 1x1 conv ``hidden -> out_ch``."""
    return nn.Sequential(nn.Conv2d(in_ch, hidden, 1), nn.SiLU(), nn.Conv2d(hidden, out_ch, 1))


class SpectralHead(nn.Module):
    """Per-pixel output MLP over the U-Net features and the raw inputs ``(x_t, C, M, D, G)``, shifted by the timestep.

    It returns ``correction + gate * GAIN * G``: a free correction plus a per-pixel, per-wavelength weight on the
    prior hint ``G`` (the raw plane named ``"prior_hint"``, in the residual's units once times ``GAIN``). Whether the
    prior or the interpolant is the better guess changes from pixel to pixel; a product is what an MLP learns
    slowest, so the head gets it explicitly. The last layer is zero-initialised: an untrained model predicts a zero
    residual (the interpolant).
    """

    def __init__(self, feature_ch: int, raw_ch: int, hidden: int, time_ch: int, out_ch: int):
        super().__init__()
        self.norm = nn.GroupNorm(_groups(feature_ch), feature_ch)
        self.hidden = nn.Conv2d(feature_ch + raw_ch, hidden, 1)
        self.time = nn.Linear(time_ch, hidden)
        self.out = _zero(nn.Conv2d(hidden, 2 * out_ch, 1))
        self.hint = plane_channels("prior_hint", out_ch, RAW_PLANES)

    def forward(self, features: torch.Tensor, raw: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        """``features`` (N, C, H, W), ``raw`` (N, 5K, H, W), ``temb`` (N, T) -> (N, K, H, W)."""
        z = self.hidden(torch.cat([F.silu(self.norm(features)), raw], dim=1)) + self.time(temb)[:, :, None, None]
        correction, gate = self.out(F.silu(z)).chunk(2, dim=1)
        return torch.addcmul(correction, gate, GAIN * raw[:, self.hint])


class ResBlock(nn.Module):
    """ResNet block with a timestep shift and CAM: ``gamma(h) * GroupNorm(F) + beta(h)`` (paper Eq. 1)."""

    def __init__(self, in_ch: int, out_ch: int, time_ch: int, cam_ch: int, dropout: float):
        super().__init__()
        self.norm1 = nn.GroupNorm(_groups(in_ch), in_ch)
        self.conv1 = nn.Conv2d(in_ch, out_ch, 3, padding=1)
        self.time = nn.Linear(time_ch, out_ch)
        self.norm2 = nn.GroupNorm(_groups(out_ch), out_ch, affine=False)
        self.cam = _zero(nn.Conv2d(cam_ch, 2 * out_ch, 1))
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(out_ch, out_ch, 3, padding=1))
        self.skip = nn.Conv2d(in_ch, out_ch, 1) if in_ch != out_ch else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W), ``temb`` (N, T), ``context`` (N, cam, H, W) at this block's resolution."""
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time(temb)[:, :, None, None]
        gamma, beta = self.cam(context).chunk(2, dim=1)
        h = (1.0 + gamma) * self.norm2(h) + beta
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head spatial self-attention with a zero-initialised output projection."""

    def __init__(self, channels: int, num_heads: int):
        super().__init__()
        self.num_heads = num_heads
        self.norm = nn.GroupNorm(_groups(channels), channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, H, W) -> same shape."""
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(n, 3, self.num_heads, c // self.num_heads, h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class _Level(nn.Module):
    """The res blocks (and attention) of one U-Net level on one path."""

    def __init__(self, blocks: list[ResBlock], attention: list[nn.Module]):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.attention = nn.ModuleList(attention)


class MCDUNet(nn.Module):
    """Masked Conditional Diffusion U-Net over the canonical residual (see the module docstring)."""

    def __init__(self, config: ModelConfig | None = None):
        super().__init__()
        self.config = config = config or ModelConfig.default()
        self.schedule = LinearSchedule(config.diffusion_steps, config.beta_start, config.beta_end)
        self.register_buffer("alphas_cumprod", self.schedule.alphas_cumprod.clone(), persistent=False)
        k, base, time_ch, cam_ch = config.channels, config.base_channels, config.time_embed, config.cam_channels
        self.time_mlp = nn.Sequential(nn.Linear(base, time_ch), nn.SiLU(), nn.Linear(time_ch, time_ch))
        hidden = config.spectral_hidden
        self.encoder = nn.Sequential(
            spectral_mlp(len(CONTEXT_PLANES) * k, hidden, cam_ch), nn.SiLU(), nn.Conv2d(cam_ch, cam_ch, 3, padding=1), nn.SiLU()
        )
        self.input = spectral_mlp(len(RAW_PLANES) * k, hidden, base)

        def attention(ch: int, level: int) -> list[nn.Module]:
            return [AttentionBlock(ch, config.num_heads)] if level in config.attention_levels else []

        self.down = nn.ModuleList()
        self.downsample = nn.ModuleList()
        skips, ch = [base], base
        for level, mult in enumerate(config.channel_mults):
            out = base * mult
            blocks, attn = [], []
            for _ in range(config.num_res_blocks):
                blocks.append(ResBlock(ch, out, time_ch, cam_ch, config.dropout))
                attn += attention(out, level)
                ch = out
                skips.append(ch)
            self.down.append(_Level(blocks, attn))
            if level < config.levels - 1:
                self.downsample.append(nn.Conv2d(ch, ch, 3, stride=2, padding=1))
                skips.append(ch)
        self.mid1 = ResBlock(ch, ch, time_ch, cam_ch, config.dropout)
        self.mid_attn = AttentionBlock(ch, config.num_heads)
        self.mid2 = ResBlock(ch, ch, time_ch, cam_ch, config.dropout)
        self.up = nn.ModuleList()
        self.upsample = nn.ModuleList()
        for level in reversed(range(config.levels)):
            out = base * config.channel_mults[level]
            blocks, attn = [], []
            for _ in range(config.num_res_blocks + 1):
                blocks.append(ResBlock(ch + skips.pop(), out, time_ch, cam_ch, config.dropout))
                attn += attention(out, level)
                ch = out
            self.up.append(_Level(blocks, attn))
            if level > 0:
                self.upsample.append(nn.Conv2d(ch, ch, 3, padding=1))
        self.head = SpectralHead(ch, len(RAW_PLANES) * k, hidden, time_ch, k)

    def _check(self, x_t: torch.Tensor) -> None:
        n, k, h, w = x_t.shape
        factor = 2 ** (self.config.levels - 1)
        if k != self.config.channels:
            raise ValueError(f"expected {self.config.channels} canonical channels, got {k}.")
        if h % factor or w % factor:
            raise ValueError(
                f"spatial size {h}x{w} must be divisible by {factor} (2 ** (levels - 1)); pad the tile first "
                "(e.g. reflect-pad to the next multiple)."
            )

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """Clean residual estimate ``x0_hat`` (N, K, H, W) from ``x_t``, timesteps ``t`` (N,) int64 and the context
        (N, 4K, H, W) of ``Condition.tensor``: the network predicts x0 (see ``anyband_xr.sampling.ddim``)."""
        self._check(x_t)
        temb = self.time_mlp(timestep_embedding(t, self.config.base_channels))
        pyramid = [self.encoder(context)]
        for _ in range(self.config.levels - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        raw = torch.cat([x_t, context], dim=1)
        h = self.input(raw)
        skips = [h]
        for level, stage in enumerate(self.down):
            for i, block in enumerate(stage.blocks):
                h = block(h, temb, pyramid[level])
                if stage.attention:
                    h = stage.attention[i](h)
                skips.append(h)
            if level < self.config.levels - 1:
                h = self.downsample[level](h)
                skips.append(h)
        h = self.mid2(self.mid_attn(self.mid1(h, temb, pyramid[-1])), temb, pyramid[-1])
        for j, stage in enumerate(self.up):
            level = self.config.levels - 1 - j
            for i, block in enumerate(stage.blocks):
                h = block(torch.cat([h, skips.pop()], dim=1), temb, pyramid[level])
                if stage.attention:
                    h = stage.attention[i](h)
            if level > 0:
                h = self.upsample[j](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        return self.head(h, raw, temb)


def count_parameters(config: ModelConfig) -> int:
    """Number of parameters of ``MCDUNet(config)``, counted on the meta device (no memory allocated)."""
    with torch.device("meta"):
        model = MCDUNet(config)
    return sum(p.numel() for p in model.parameters())
