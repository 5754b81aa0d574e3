"""One typed sampling configuration: built and validated once from the user's keywords, recorded once as provenance.

``RepairSettings.build`` is the only place keywords become settings: ``repair``, ``generate``, ``repair_zarr``, the
CLI and the benchmarks all call it, so every option means the same everywhere and bad values fail before any work
starts, with one actionable message.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, replace

from anyband_xr import __version__
from anyband_xr.model.weights import sampling_steps, spectral_prior_hash, weights_hash

METHODS = ("diffusion", "linear", "pchip", "gaussian", "lowrank", "auto")
GRAD_MODES = ("x0", "full")
OPERATOR_NAMES = ("sensor", "ndvi", "ndwi", "range", "rtm")
DEFAULT_OPERATORS = ("sensor", "ndvi", "ndwi", "range")
#: Largest PGS scale accepted: ``s`` Gauss-Newton steps per level; far above 1 the steps overshoot.
MAX_GUIDANCE = 10.0


@dataclass(frozen=True)
class RepairSettings:
    """Everything that decides a repair's result (recorded as provenance).

    Attributes:
        method: ``"auto"`` (the default): the best of the candidates below on the scene's own observed values,
            hidden like the mask hides values (``anyband_xr.selfcheck``; a repair resolves it before any block
            runs), or one of them: ``"diffusion"`` (AnyBand-Diff) or a classical baseline (``"linear"``,
            ``"pchip"``, ``"gaussian"``, ``"lowrank"``: the in-scene low-rank Gaussian, ``anyband_xr.lowrank``).
        guidance: PGS scale ``s`` (0 disables physics guidance).
        steps: DDIM steps. ``samples``: posterior samples averaged. ``seed``: noise seed.
        eta: DDIM noise in [0, 1] (0 deterministic, 1 DDPM-like).
        operators: names of the PGS operators; ``user_operators`` holds ``nn.Module`` instances.
        grad: ``"x0"`` (guidance through the Tweedie estimate) or ``"full"`` (through the network).
        tile: side (pixels) of the tiles the model sees; ``overlap``: pixels shared by neighbouring tiles.
        device: torch device name, or None for CUDA when available else CPU.
        weights: stem or path of the MCD weights, or None for the shipped model (``"gaussian"``: their Gaussian
            spectral prior, ``model.weights.gaussian_prior``).
        reflectance: the data are reflectance (the ``range`` operator then caps at 1 or the brightest observation).
        correction_gain: share in [0, 1] (to the hundredth) of the model's correction that a ``"diffusion"``
            repair adds where it corrects the scene's low-rank completion (per-value loss); not a keyword of
            ``build`` or ``repair``: measured on the scene's own observed values
            (``anyband_xr.selfcheck.measure_correction_gain``, ``SelfCheck.gain``). 1 where the model corrects the
            PCHIP interpolant.
    """

    method: str = "auto"
    guidance: float = 1.0
    steps: int = 50
    samples: int = 1
    seed: int = 0
    eta: float = 0.0
    operators: tuple[str, ...] = DEFAULT_OPERATORS
    grad: str = "x0"
    tile: int = 256
    overlap: int = 32
    device: str | None = None
    weights: str | None = None
    reflectance: bool = True
    correction_gain: float = 1.0
    user_operators: tuple = field(default=(), compare=False, repr=False)

    @classmethod
    def build(
        cls,
        method: str = "auto",
        guidance: float = 1.0,
        steps: int | None = None,
        samples: int = 1,
        seed: int | None = None,
        eta: float = 0.0,
        operators: list | tuple | None = None,
        grad: str = "x0",
        tile: int = 256,
        overlap: int = 32,
        device: str | None = None,
        weights: str | None = None,
        reflectance: bool = True,
    ) -> RepairSettings:
        """Validated settings from the user's keywords (see ``anyband_xr.repair.repair`` for their meaning).

        ``steps=None`` takes the count validated for ``weights``; ``operators`` mixes names and ``nn.Module``
        instances. Raises ``ValueError``/``TypeError`` naming the bad keyword and its accepted values.
        """
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}.")
        if grad not in GRAD_MODES:
            raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}.")
        names = tuple(op for op in (operators or ()) if isinstance(op, str))
        unknown = sorted(set(names) - set(OPERATOR_NAMES))
        if unknown:
            raise ValueError(f"unknown PGS operators {unknown}; choose from {list(OPERATOR_NAMES)} or pass nn.Module instances.")
        settings = cls(
            method=method,
            guidance=_number("guidance", guidance, 0.0, MAX_GUIDANCE),
            steps=sampling_steps(weights) if steps is None else _integer("steps", steps, 1, 1000),
            samples=_integer("samples", samples, 1),
            seed=0 if seed is None else _integer("seed", seed, 0),
            eta=_number("eta", eta, 0.0, 1.0),
            operators=names if operators is not None else DEFAULT_OPERATORS,
            grad=grad,
            tile=_integer("tile", tile, 8),
            overlap=_integer("overlap", overlap, 0),
            device=None if device is None else str(device),
            weights=None if weights is None else str(weights),
            reflectance=bool(reflectance),
            user_operators=tuple(op for op in (operators or ()) if not isinstance(op, str)),
        )
        if settings.overlap >= settings.tile:
            raise ValueError(
                f"overlap ({settings.overlap}) must be smaller than tile ({settings.tile}); e.g. overlap={settings.tile // 8}."
            )
        if method in ("diffusion", "auto"):
            check_device(settings.device)
        return settings

    def with_reflectance(self, reflectance: bool) -> RepairSettings:
        """The same settings for data that are (or are not) reflectance."""
        return replace(self, reflectance=bool(reflectance))

    def provenance(self) -> dict[str, str | int | float]:
        """``anyband_*`` attributes recording what decided the result (the version, the hashes of the weights and of
        the Gaussian spectral prior they condition on)."""
        dropped = ("user_operators", "device", "reflectance", "weights",
                   *(() if self.method == "diffusion" else ("correction_gain",)))
        record = {k: v for k, v in asdict(self).items() if k not in dropped}
        record["operators"] = ",".join(record["operators"])
        out = {f"anyband_{k}": v for k, v in record.items()}
        out["anyband_version"] = __version__
        if self.method in ("diffusion", "auto") or (self.method == "gaussian" and self.weights is not None):
            out["anyband_weights"] = self.weights or "default"
            out["anyband_weights_sha256"] = weights_hash(self.weights)
        if self.method in ("diffusion", "auto", "gaussian"):
            out["anyband_prior_sha256"] = spectral_prior_hash(self.weights)
        return out


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite number in [{low}, {high}], got {value!r}.")
    if not low <= float(value) <= high:
        raise ValueError(f"{name} must be in [{low}, {high}], got {value!r}.")
    return float(value)


def _integer(name: str, value: object, low: int, high: int | None = None) -> int:
    integral = isinstance(value, numbers.Integral) or (isinstance(value, float) and value.is_integer())
    if isinstance(value, bool) or not integral:
        raise ValueError(f"{name} must be a whole number, got {value!r}.")
    if int(value) < low or (high is not None and int(value) > high):
        bounds = f">= {low}" if high is None else f"in [{low}, {high}]"
        raise ValueError(f"{name} must be {bounds}, got {value!r}.")
    return int(value)


def check_device(device: str | None) -> None:
    """Raise ``ValueError`` when ``device`` names a torch device this machine cannot use (imports torch)."""
    if device is None:
        return
    import torch

    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device {device!r} is not a torch device name (e.g. 'cpu', 'cuda', 'cuda:1'): {err}") from err
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} asked for CUDA, but torch sees no CUDA GPU here; use device='cpu' or omit it.")
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) here.")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available here; use device='cpu'.")
