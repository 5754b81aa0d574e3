"""Fixtures shipped for tests, notebooks and offline demos: a real local STAC API over the bundled scenes
(``anyband_xr.testing.stac_api``). Nothing here downloads anything."""
