"""Names and order of the planes of the model's context, the one place that states them.

``Condition.tensor`` (``anyband_xr.conditioning.bridge``) stacks the planes in this order along the channel axis,
each K = 211 channels wide (one per canonical wavelength); the U-Net finds a plane by its name.
"""

from __future__ import annotations

#: The context's planes, in order: the soft sparse condition ``C``, the coverage ``M``, the bend hint ``D`` and the
#: prior hint ``G`` (see ``Condition.tensor``).
CONTEXT_PLANES = ("condition", "coverage", "bend", "prior_hint")


def plane_channels(name: str, width: int, planes: tuple[str, ...] = CONTEXT_PLANES) -> slice:
    """Channels of the plane ``name`` in a stack of ``planes``, each ``width`` channels wide."""
    index = planes.index(name)
    return slice(index * width, (index + 1) * width)
