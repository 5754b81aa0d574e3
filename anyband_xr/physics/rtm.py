"""Differentiable PROSAIL emulator: the RTM manifold constraint of PGS and the global term of MSPL (A.1, Eq. 8, 11).

An MLP pair trained on PROSPECT-D + 4SAIL simulations (``scripts/generate_prosail.py``, ``scripts/train_rtm.py``):
the decoder ``D`` maps normalised biophysical parameters ``P`` in [0, 1] to canonical-grid reflectance, the encoder
maps a (possibly partial) canonical spectrum to ``P`` through two heads on one trunk: ``E`` (``encode``), the
parameters from which ``D`` best reproduces the spectrum, and ``retrieve``, the best estimate of the parameters
themselves (where parameters trade off, e.g. LAI against leaf angle, the two differ). ``L_RTM = mean((x -
D(E(x)))**2)`` over valid wavelengths measures how far a spectrum lies from the PROSAIL manifold.

Spectra are surface reflectance factors in [0, 1] on ``anyband_xr.grid.CANONICAL_NM`` (400..2500 nm, 10 nm).
Scenes stored as scaled integers (e.g. reflectance x 10000) must be divided back first; the distance is in squared
reflectance units and is not brightness-invariant. ``to_canonical`` brings any other grid onto the canonical one.
The shipped weights are plain safetensors + JSON; ``prosail`` (GPL-3) is never imported here.
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from typing import Literal, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from anyband_xr.grid import CANONICAL_NM, interpolation_matrix

WEIGHTS_FILE = "rtm_emulator.safetensors"
CONFIG_FILE = "rtm_emulator.json"


def _mlp(sizes: Sequence[int]) -> nn.Sequential:
    """Linear layers of ``sizes`` with SiLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.SiLU())
    return nn.Sequential(*layers)


def _masked_mean(values: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean over the last axis counting only ``valid`` entries (all when None); 0 where none is valid."""
    if valid is None:
        return values.mean(dim=-1)
    weight = valid.to(values.dtype).expand_as(values)
    return (weight * values).sum(dim=-1) / weight.sum(dim=-1).clamp_min(1.0)


def canonical_weights(wavelength_nm: np.ndarray, max_gap_nm: float | None = 50.0) -> tuple[np.ndarray, np.ndarray]:
    """Linear interpolation from bands at ``wavelength_nm`` (any order) onto the canonical grid.

    Returns ``weights`` (211, B) and ``valid`` (211,) bool. A canonical wavelength is invalid (weight row 0) outside
    the input's range, or strictly inside a gap between neighbouring bands wider than ``max_gap_nm`` (e.g. removed
    water-vapour bands); ``max_gap_nm=None`` interpolates across every gap.
    """
    wl = np.asarray(wavelength_nm, dtype=np.float64)
    order = np.argsort(wl, kind="stable")
    sorted_wl = wl[order]
    weights = np.zeros((len(CANONICAL_NM), len(wl)))
    weights[:, order] = interpolation_matrix(sorted_wl, CANONICAL_NM)
    right = np.clip(np.searchsorted(sorted_wl, CANONICAL_NM, side="left"), 1, len(wl) - 1)
    gap = sorted_wl[right] - sorted_wl[right - 1]
    valid = (CANONICAL_NM >= sorted_wl[0]) & (CANONICAL_NM <= sorted_wl[-1])
    if max_gap_nm is not None:
        valid &= (gap <= max_gap_nm) | np.isin(CANONICAL_NM, sorted_wl)
    weights[~valid] = 0.0
    return weights, valid


def to_canonical(
    x: torch.Tensor | np.ndarray, wavelength_nm: np.ndarray, max_gap_nm: float | None = 50.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Resample spectra ``x`` (..., B) at ``wavelength_nm`` onto the canonical grid by linear interpolation.

    Returns ``(x_canonical (..., 211), valid (211,) bool)``; invalid canonical values are 0 (see
    ``canonical_weights``). Differentiable in ``x``.
    """
    x = torch.as_tensor(x)
    if not x.is_floating_point():
        x = x.to(torch.float32)
    weights, valid = canonical_weights(wavelength_nm, max_gap_nm)
    w = torch.as_tensor(weights, dtype=x.dtype, device=x.device)
    return x @ w.T, torch.as_tensor(valid, device=x.device)


class RTMEmulator(nn.Module):
    """PROSAIL autoencoder on the canonical grid: ``encode`` x -> P in [0, 1], ``decode`` P -> reflectance.

    ``retrieve`` x -> P is the encoder's retrieval head (scored against the true parameters). ``parameter_low``/
    ``parameter_high`` map ``P`` linearly to physical units (names in ``parameter_names``). The encoder sees
    ``(x * valid, valid)`` so that it works on spectra covering part of 400-2500 nm.
    """

    def __init__(self, parameter_names: Sequence[str], hidden: Sequence[int] = (256, 256, 256)):
        super().__init__()
        n_bands, n_params = len(CANONICAL_NM), len(parameter_names)
        self.parameter_names = tuple(parameter_names)
        self.hidden = tuple(hidden)
        self.encoder = _mlp([2 * n_bands, *hidden, 2 * n_params])  # outputs: encode head, then retrieve head
        self.decoder = _mlp([n_params, *hidden, n_bands])
        self.register_buffer("canonical_nm", torch.as_tensor(CANONICAL_NM, dtype=torch.float32))
        self.register_buffer("x_mean", torch.zeros(n_bands))
        self.register_buffer("x_std", torch.ones(n_bands))
        self.register_buffer("parameter_low", torch.zeros(n_params))
        self.register_buffer("parameter_high", torch.ones(n_params))

    def heads(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Both encoder outputs ``(encode(x, valid), retrieve(x, valid))`` from one pass through the trunk."""
        z = (x - self.x_mean) / self.x_std
        mask = torch.ones_like(self.x_mean) if valid is None else valid.to(z.dtype)
        first, n_bands = self.encoder[0], z.shape[-1]
        # first layer on cat([z * mask, mask]), with the mask term on the (often shared) mask itself
        hidden = F.linear(z * mask, first.weight[:, :n_bands], first.bias) + F.linear(mask, first.weight[:, n_bands:])
        return torch.sigmoid(self.encoder[1:](hidden)).chunk(2, dim=-1)

    def encode(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Reflectance (..., 211) -> normalised parameters (..., p) in (0, 1) that ``decode`` maps back closest to x.

        ``valid`` (..., 211) bool or None (all valid).
        """
        return self.heads(x, valid)[0]

    def retrieve(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Reflectance (..., 211) -> best estimate of the normalised parameters (..., p) in (0, 1).

        Use for retrieving LAI, Cab etc. (``to_physical`` gives units); ``valid`` as in ``encode``.

        Example:
            >>> lai = rtm.to_physical(rtm.retrieve(x))[..., rtm.parameter_names.index("lai")]
        """
        return self.heads(x, valid)[1]

    def decode(self, p: torch.Tensor) -> torch.Tensor:
        """Normalised parameters (..., p) -> reflectance (..., 211)."""
        return self.decoder(2.0 * p - 1.0) * self.x_std + self.x_mean

    def to_physical(self, p: torch.Tensor) -> torch.Tensor:
        """Normalised parameters (..., p) -> physical units (see ``parameter_names`` and the JSON config)."""
        return self.parameter_low + p * (self.parameter_high - self.parameter_low)

    def manifold_distance(self, x: torch.Tensor, valid: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
        """L_RTM (Eq. 11): mean squared reflectance misfit ``(x - D(E(x)))**2`` over valid wavelengths.

        ``x`` has the 211 canonical wavelengths along ``dim`` (e.g. ``dim=1`` for (N, K, H, W)); the result drops
        that axis. ``valid`` (same layout as ``x``, or (211,)) restricts the mean to the wavelengths a sensor covers.
        """
        x = x.movedim(dim, -1)
        if valid is not None and valid.dim() > 1:
            valid = valid.movedim(dim, -1)
        return _masked_mean((x - self.decode(self.encode(x, valid))) ** 2, valid)

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Same as ``manifold_distance`` on (..., 211)."""
        return self.manifold_distance(x, valid)

    def nearest_physical(
        self,
        x: torch.Tensor,
        valid: torch.Tensor | None = None,
        steps: int = 100,
        lr: float = 0.05,
        init: Literal["encoder", "prior"] = "encoder",
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Forward-only variant of Eq. 11: nearest decoder spectrum by Adam in parameter space.

        Starts from the encoder's guess (``init="encoder"``) or the prior mean P = 0.5 (``"prior"``) and minimises
        the masked squared misfit to ``x`` over ``steps`` steps of size ``lr`` in logit(P). Returns the detached
        ``(P (..., p), D(P) (..., 211))``; ``((x - D(P))**2)`` stays differentiable in ``x``.
        """
        target = x.detach()
        with torch.no_grad():
            if init == "encoder":
                p0 = self.encode(target, valid)
            else:
                p0 = torch.full((*target.shape[:-1], len(self.parameter_names)), 0.5, dtype=target.dtype,
                                device=target.device)
        logit = torch.logit(p0.clamp(1e-4, 1 - 1e-4)).requires_grad_(True)
        optimiser = torch.optim.Adam([logit], lr=lr)
        with torch.enable_grad():
            for _ in range(steps):
                loss = _masked_mean((target - self.decode(torch.sigmoid(logit))) ** 2, valid).sum()
                (grad,) = torch.autograd.grad(loss, logit)
                logit.grad = grad
                optimiser.step()
        p = torch.sigmoid(logit).detach()
        with torch.no_grad():
            return p, self.decode(p)


def build_emulator(config: dict) -> RTMEmulator:
    """An untrained emulator shaped as ``config`` (the JSON written by ``scripts/train_rtm.py``)."""
    return RTMEmulator(config["parameter_names"], hidden=config["hidden"])


@lru_cache(maxsize=None)
def _load(device: str) -> RTMEmulator:
    from safetensors.torch import load_file

    data = files("anyband_xr") / "data"
    config = json.loads((data / CONFIG_FILE).read_text())
    model = build_emulator(config)
    model.load_state_dict(load_file(str(data / WEIGHTS_FILE), device=device))
    model.to(device).eval().requires_grad_(False)
    return model


def load_emulator(device: str | torch.device | None = None) -> RTMEmulator:
    """The shipped frozen emulator (eval mode, no parameter gradients), loaded once per device on first use."""
    return _load(str(torch.device(device if device is not None else "cpu")))
