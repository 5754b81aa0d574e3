"""Conditioning of AnyBand-Diff: what the model sees of an observation, on the canonical grid.

``bridge`` holds the per-pixel interpolants, the ``Condition`` of a tile and the residual the model diffuses;
``prior`` the Gaussian spectral prior of real spectra and its conditional mean; ``trust`` the weight of that prior
over the interpolant. The modules import torch; importing this package does not.
"""
