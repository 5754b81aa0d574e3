"""Differentiable physics in torch: spectral indices, RTM emulator, physics-guided sampling operators."""
