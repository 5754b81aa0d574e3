"""Conditioning of AnyBand-Diff: what the model sees of an observation, on the canonical grid.

``planes`` names the context's planes; ``bridge`` holds the ``Condition`` of a tile and the residual the model
diffuses; ``interpolants`` the per-pixel linear and PCHIP interpolants (NumPy only: the classical baselines use them
too); ``band_set`` the same condition by per-tile weights when every pixel observes the same bands; ``gaussian``
the Gaussian spectral prior, the Gaussian conditional mean and the interpolation matrix (NumPy only: the classical
baselines use them without torch); ``prior`` the prior hint per pixel in torch; ``trust`` the weight of that hint
over the interpolant. Importing this package imports nothing.
"""
