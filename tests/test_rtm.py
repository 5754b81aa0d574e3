"""The PROSAIL emulator: shipped weights, resampling, masked L_RTM, gradients, forward-only variant, real-scene ordering."""

from __future__ import annotations

import ast
import importlib.util
import json
import sys
from importlib.resources import files
from pathlib import Path

import numpy as np
import pytest
import torch
import zarr
from safetensors.torch import load_file

from anyband_xr import datasets
from anyband_xr.grid import CANONICAL_NM
from anyband_xr.physics.rtm import CONFIG_FILE, WEIGHTS_FILE, RTMEmulator, build_emulator, load_emulator, to_canonical

VNIR = torch.as_tensor(CANONICAL_NM <= 1000)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny MLPs: one intra-op thread avoids oversubscription stalls on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def emulator() -> RTMEmulator:
    return load_emulator()


@pytest.fixture(scope="module")
def physical(emulator) -> tuple[torch.Tensor, torch.Tensor]:
    """Decoder spectra (on the manifold by construction) at seeded random parameters."""
    p = torch.rand(64, len(emulator.parameter_names), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return p, emulator.decode(p)


def test_weights_are_safetensors_and_load_frozen(emulator):
    data = files("anyband_xr") / "data"
    header = (data / WEIGHTS_FILE).read_bytes()[:8]
    assert not header.startswith(b"PK") and header[:2] != b"\x80\x02"  # neither a torch zip nor a raw pickle
    config = json.loads((data / CONFIG_FILE).read_text())
    assert tuple(config["parameter_names"]) == emulator.parameter_names
    assert {"lai", "cab"} <= set(emulator.parameter_names)
    assert not emulator.training
    assert not any(param.requires_grad for param in emulator.parameters())
    assert load_emulator() is emulator


def test_shipped_heldout_scores_meet_the_issue():
    scores = json.loads((files("anyband_xr") / "data" / CONFIG_FILE).read_text())["heldout_scores"]
    assert scores["decoder_rmse"] < 0.01
    assert scores["encoder_r2"]["lai"] > 0.9
    assert scores["encoder_r2"]["cab"] > 0.9


def test_no_package_module_imports_prosail():
    for path in Path(files("anyband_xr")).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            assert not any(name.split(".")[0] == "prosail" for name in names), path


def test_to_canonical_interpolates_linearly_and_masks_range_and_gaps():
    wl = np.concatenate([np.arange(1000.0, 400.0, -7.5), np.arange(1500.0, 2000.0, 9.0)])  # unsorted, 500 nm gap
    x = torch.as_tensor(np.stack([0.1 + 1e-4 * wl, 0.3 - 5e-5 * wl]))
    xc, valid = to_canonical(x, wl)
    inside = (CANONICAL_NM >= wl.min()) & (CANONICAL_NM <= wl.max())
    gap = (CANONICAL_NM > 1000) & (CANONICAL_NM < 1500)
    np.testing.assert_array_equal(valid.numpy(), inside & ~gap)
    expected = np.stack([0.1 + 1e-4 * CANONICAL_NM, 0.3 - 5e-5 * CANONICAL_NM])
    np.testing.assert_allclose(xc.numpy()[:, valid.numpy()], expected[:, valid.numpy()], atol=1e-12)
    assert (xc.numpy()[:, ~valid.numpy()] == 0).all()
    _, across = to_canonical(x, wl, max_gap_nm=None)
    np.testing.assert_array_equal(across.numpy(), inside)


def test_decoder_spectra_are_near_the_manifold_and_flat_ones_are_not(emulator, physical):
    _, on = physical
    flat = torch.full((8, len(CANONICAL_NM)), 0.3)
    dark = torch.linspace(0.06, 0.0, len(CANONICAL_NM)).expand(8, -1)  # water-like
    with torch.no_grad():
        d_on = emulator.manifold_distance(on)
        assert d_on.shape == (64,)
        assert d_on.median() < 1e-4
        assert d_on.median() * 10 < emulator.manifold_distance(flat).median()
        assert d_on.median() * 10 < emulator.manifold_distance(dark).median()


def test_retrieve_recovers_lai_and_cab_and_shares_the_trunk_with_encode(emulator, physical):
    p_true, x = physical
    with torch.no_grad():
        p_encode, p_retrieve = emulator.heads(x)
        torch.testing.assert_close(p_encode, emulator.encode(x))
        torch.testing.assert_close(p_retrieve, emulator.retrieve(x, torch.ones(len(CANONICAL_NM), dtype=torch.bool)))
    for name in ("lai", "cab"):
        i = emulator.parameter_names.index(name)
        residual = ((p_retrieve[:, i] - p_true[:, i]) ** 2).sum()
        assert 1 - residual / ((p_true[:, i] - p_true[:, i].mean()) ** 2).sum() > 0.8, name


def test_masked_distance_ignores_uncovered_wavelengths(emulator, physical):
    _, x = physical
    scrambled = torch.where(VNIR, x, torch.rand(x.shape, generator=torch.Generator().manual_seed(1)))
    with torch.no_grad():
        torch.testing.assert_close(emulator.manifold_distance(x, VNIR), emulator.manifold_distance(scrambled, VNIR))
        assert emulator.manifold_distance(x, VNIR).median() < 1e-4


def test_distance_along_a_channel_axis_matches_per_spectrum(emulator, physical):
    _, x = physical
    image = x.reshape(4, 4, 4, -1).permute(0, 3, 1, 2)  # (N, K, H, W)
    with torch.no_grad():
        per_pixel = emulator.manifold_distance(image, dim=1)
        torch.testing.assert_close(per_pixel, emulator.manifold_distance(x).reshape(4, 4, 4))


def test_gradients_flow_to_the_spectrum(emulator, physical):
    _, x = physical
    x = (x[:4] + 0.02).requires_grad_(True)
    emulator.manifold_distance(x, VNIR).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad[:, VNIR].abs().sum() > 0
    assert (x.grad[:, ~VNIR] == 0).all()
    double = RTMEmulator(emulator.parameter_names, emulator.hidden).double()
    double.load_state_dict(emulator.state_dict())
    spectrum = x.detach()[0].double().requires_grad_(True)
    (grad,) = torch.autograd.grad(double.manifold_distance(spectrum), spectrum)
    for seed in range(3):
        direction = torch.randn(spectrum.shape, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        with torch.no_grad():
            step = 1e-6 * direction
            numeric = (double.manifold_distance(spectrum + step) - double.manifold_distance(spectrum - step)) / 2e-6
        torch.testing.assert_close(numeric, grad @ direction, rtol=1e-4, atol=1e-9)


def test_nearest_physical_descends_from_the_prior(emulator, physical):
    p_true, x = physical
    x = x[:16]
    prior_fit = emulator.decode(torch.full_like(p_true[:16], 0.5))
    p, nearest = emulator.nearest_physical(x, steps=200, lr=0.05, init="prior")
    assert p.shape == p_true[:16].shape and ((p > 0) & (p < 1)).all()
    assert ((nearest - x) ** 2).mean() < 0.05 * ((prior_fit - x) ** 2).mean()
    _, refined = emulator.nearest_physical(x, steps=50)
    assert ((refined - x) ** 2).mean() <= ((emulator.decode(emulator.encode(x)) - x) ** 2).mean() * 1.01


def test_real_scene_vegetation_is_closer_to_the_manifold_than_water_and_road(emulator):
    scene = datasets.jasper_ridge()
    abundance = datasets.jasper_ridge_abundances()
    spectra = torch.as_tensor(scene.transpose("y", "x", "wavelength").values.astype(np.float32))
    x, valid = to_canonical(spectra, scene["wavelength"].values)
    with torch.no_grad():
        distance = emulator.manifold_distance(x, valid).numpy()
    share = abundance.transpose("endmember", "y", "x")
    dominant = share.argmax("endmember").values
    names = list(share["endmember"].values)

    def mean_where(name: str, pure: bool) -> float:
        select = share.sel(endmember=name).values > 0.8 if pure else dominant == names.index(name)
        assert select.sum() > 20
        return float(distance[select].mean())

    tree = mean_where("tree", pure=True)
    assert tree < mean_where("water", pure=False)
    assert tree < mean_where("road", pure=False)


def _script(name: str):
    """``scripts/<name>.py`` as a module (registered in ``sys.modules`` so that worker processes can unpickle it)."""
    path = Path(__file__).resolve().parents[1] / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow  # numba compiles prosail on first use
def test_regeneration_scripts_run_end_to_end(emulator, tmp_path, monkeypatch):
    pytest.importorskip("prosail")
    generate, train = _script("generate_prosail"), _script("train_rtm")
    monkeypatch.setattr(generate, "CHUNK", 8)  # 20 spectra in 3 chunks
    store_path, args = tmp_path / "prosail.zarr", ["--n", "20", "--out", str(tmp_path / "prosail.zarr"), "--seed", "7"]
    generate.main(args)
    store = zarr.open_group(store_path, mode="r+")
    params, reflectance = store["parameters"][:], store["reflectance"][:]
    np.testing.assert_array_equal(params, generate.latin_hypercube(20, seed=7))
    assert store["done"][:].all() and reflectance.shape == (20, len(CANONICAL_NM))
    low, high = emulator.parameter_low.double(), emulator.parameter_high.double()
    p = ((torch.as_tensor(params) - low) / (high - low)).float()
    with torch.no_grad():  # fresh PROSAIL runs, not in the training set
        assert ((emulator.decode(p) - torch.as_tensor(reflectance)) ** 2).mean().sqrt() < 0.015

    store["reflectance"][:16] = 0.0  # an interrupted run: only the unfinished chunk 1 is simulated again
    store["done"][1] = False
    generate.main(args)
    assert (store["reflectance"][:8] == 0).all()
    np.testing.assert_array_equal(store["reflectance"][8:], reflectance[8:])
    with pytest.raises(SystemExit, match="use another --out"):
        generate.main(["--n", "21", "--out", str(store_path), "--seed", "7"])

    docs = tmp_path / "rtm.md"
    docs.write_text(f"# scores\n{train.SCORES_BEGIN}\nold\n{train.SCORES_END}\nrest\n")
    train.main(["--data", str(store_path), "--epochs-decoder", "1", "--epochs-encoder", "1", "--batch", "8",
                "--out", str(tmp_path), "--docs", str(docs)])
    config = json.loads((tmp_path / CONFIG_FILE).read_text())
    model = build_emulator(config)
    model.load_state_dict(load_file(str(tmp_path / WEIGHTS_FILE)))
    assert config["heldout_scores"]["n_heldout"] == 2 and set(config["heldout_scores"]["encoder_r2"]) == set(
        model.parameter_names)
    page = docs.read_text()
    assert "old" not in page and page.endswith(f"{train.SCORES_END}\nrest\n") and "| `lai` |" in page
