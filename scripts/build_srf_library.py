"""Build ``anyband_xr/data/srf_library.csv.gz`` from the agency SRF files in ../shared/data/srf.

Cleaning (every band): negative responses clipped to 0, zero samples dropped (the i.atcorr2 merged-grid files
zero-fill a band's missing samples), samples outside 350-2600 nm dropped (thermal out-of-band leaks), linear resampling of the remaining samples onto a 1 nm grid between the first and
last of them, peak normalised to 1. Bands whose peak lies outside 350-2600 nm (thermal) are left out.

The band centroids are then cross-checked against the independent acolite compilation (GPL-3, used only for the
check, never shipped): the script prints the differences, writes ``tests/data/srf_crosscheck.csv`` and exits
non-zero when a shared band differs by more than 1 nm.

Usage: python scripts/build_srf_library.py [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anyband_xr import srf

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "anyband_xr" / "data" / "srf_library.csv.gz"
CROSSCHECK = ROOT / "tests" / "data" / "srf_crosscheck.csv"
RANGE_NM = (350.0, 2600.0)
TOLERANCE_NM = 1.0
MAIN_LOBE_FLOOR = 1e-3  # main lobe: contiguous samples above this fraction of the peak

Band = tuple[str, str, np.ndarray, np.ndarray]  # name, common name, wavelength (nm), response


@dataclass(frozen=True)
class Sensor:
    """One library entry: how to read it, where it comes from and how to cross-check it."""

    name: str
    source: str
    licence: str
    read: Callable[[Path], Iterator[Band]]
    acolite: str | None = None
    acolite_bands: dict[str, str] | None = None  # our band -> acolite band id (default: same order)
    main_lobe: bool = False  # keep only the in-band main lobe (see ``clean``)


USGS = "USGS, public domain (US Government work)"
ESA = "ESA Copernicus Sentinel-2 SRF document COPE-GSEG-EOPG-TN-15-0007 v4.0, Copernicus free and open data licence"
NASA = "NASA, public domain (US Government work)"
PLANET = "Planet Labs published RSR, redistributed in YannChemin/i.atcorr2 (Unlicense)"
VENDOR = "vendor-published RSR via YannChemin/i.atcorr2 (Unlicense, public domain)"

S2_COMMON = {
    "B01": "coastal", "B02": "blue", "B03": "green", "B04": "red", "B05": "rededge071", "B06": "rededge075",
    "B07": "rededge078", "B08": "nir", "B8A": "nir08", "B09": "nir09", "B10": "cirrus", "B11": "swir16",
    "B12": "swir22",
}
TM_COMMON = {"B1": "blue", "B2": "green", "B3": "red", "B4": "nir", "B5": "swir16", "B7": "swir22", "B8": "pan"}
OLI_SHEETS = {
    "CoastalAerosol": ("B1", "coastal"), "Blue": ("B2", "blue"), "Green": ("B3", "green"), "Red": ("B4", "red"),
    "NIR": ("B5", "nir08"), "SWIR1": ("B6", "swir16"), "SWIR2": ("B7", "swir22"), "Pan": ("B8", "pan"),
    "Cirrus": ("B9", "cirrus"),
}
MODIS_COMMON = {
    1: "red", 2: "nir", 3: "blue", 4: "green", 6: "swir16", 7: "swir22", 8: "coastal", 26: "cirrus",
}
ASTER_COMMON = {"1": "green", "2": "red", "3N": "nir", "3B": "nir", "4": "swir16"}
ALI_BANDS = {
    "Band 1p": ("B1p", "coastal"), "Band 1": ("B1", "blue"), "Band 2": ("B2", "green"), "Band 3": ("B3", "red"),
    "Band 4": ("B4", "nir"), "Band 4p": ("B4p", "nir08"), "Band 5p": ("B5p", ""), "Band 5": ("B5", "swir16"),
    "Band 7": ("B7", "swir22"), "Pan Band": ("PAN", "pan"),
}
FOUR_BAND = [("B1", "blue"), ("B2", "green"), ("B3", "red"), ("B4", "nir")]
SUPERDOVE = [
    ("B1", "coastal"), ("B2", "blue"), ("B3", "green"), ("B4", "green"), ("B5", "yellow"), ("B6", "red"),
    ("B7", "rededge"), ("B8", "nir"),
]
RAPIDEYE = [("B1", "blue"), ("B2", "green"), ("B3", "red"), ("B4", "rededge"), ("B5", "nir")]
AIRBUS = [("B0", "blue"), ("B1", "green"), ("B2", "red"), ("B3", "nir"), ("PAN", "pan")]
WV_VNIR = [
    ("C", "coastal"), ("B", "blue"), ("G", "green"), ("Y", "yellow"), ("R", "red"), ("RE", "rededge"),
    ("N", "nir"), ("N2", "nir09"),
]
WV3_SWIR = [(f"S{i}", c) for i, c in enumerate(["swir16", "swir16", "", "", "swir22", "swir22", "", ""], 1)]


def _columns(table: pd.DataFrame, bands: list[tuple[str, str]], scale: float = 1.0) -> Iterator[Band]:
    """Bands from a wide table: first column wavelength (scaled to nm), then one column per band in ``bands`` order."""
    wl = pd.to_numeric(table.iloc[:, 0], errors="coerce").to_numpy() * scale
    for (name, common), column in zip(bands, table.columns[1:], strict=True):
        yield name, common, wl, pd.to_numeric(table[column], errors="coerce").to_numpy()


def read_sentinel2(unit: str) -> Callable[[Path], Iterator[Band]]:
    def read(data: Path) -> Iterator[Band]:
        table = pd.read_excel(data / "srf/agency_sources/S2A_MSI_RSR.xlsx", sheet_name=f"Spectral Responses ({unit})")
        names = [c.rsplit("_", 1)[1].replace("B", "") for c in table.columns[1:]]
        names = ["B" + (n if n == "8A" else f"{int(n):02d}") for n in names]
        yield from _columns(table, [(n, S2_COMMON[n]) for n in names])

    return read


def read_usgs_tm(file: str) -> Callable[[Path], Iterator[Band]]:
    def read(data: Path) -> Iterator[Band]:
        for sheet in pd.read_excel(data / "srf/agency_sources" / file, sheet_name=None).values():
            name = "B" + str(sheet.columns[1]).split()[-1]
            yield name, TM_COMMON[name], sheet.iloc[:, 0].to_numpy(float), sheet.iloc[:, 1].to_numpy(float)

    return read


def read_usgs_oli(file: str) -> Callable[[Path], Iterator[Band]]:
    def read(data: Path) -> Iterator[Band]:
        sheets = pd.read_excel(data / "srf/agency_sources" / file, sheet_name=list(OLI_SHEETS))
        for sheet_name, (name, common) in sorted(OLI_SHEETS.items(), key=lambda kv: int(kv[1][0][1:])):
            sheet = sheets[sheet_name]
            yield name, common, sheet.iloc[:, 0].to_numpy(float), sheet.iloc[:, 1].to_numpy(float)

    return read


def read_modis(data: Path) -> Iterator[Band]:
    table = pd.read_excel(data / "srf/agency_sources/MODIS_PFM_IB_OOB_RSR_merged.xls", header=None)
    for k in range(0, table.shape[1], 2):
        number = int(str(table.iloc[0, k]).split()[-1])
        wl = pd.to_numeric(table.iloc[2:, k], errors="coerce").to_numpy() * 1000.0
        yield f"B{number}", MODIS_COMMON.get(number, ""), wl, pd.to_numeric(table.iloc[2:, k + 1], errors="coerce").to_numpy()


def read_aster(data: Path) -> Iterator[Band]:
    table = pd.read_csv(data / "srf/Terra_ASTER_VNIR_SWIR_from_agency_xlsx.csv", dtype={"band": str})
    for band, group in table.groupby("band", sort=False):
        yield f"B{band}", ASTER_COMMON.get(band, ""), group["wavelength_nm"].to_numpy(float), group["response"].to_numpy(float)


def read_ali(data: Path) -> Iterator[Band]:
    table = pd.read_excel(data / "srf/agency_sources/EarthObservation-1_ALI_SPECTRAL_TABLE.XLS", header=None)
    for k in range(0, table.shape[1], 3):
        name, common = ALI_BANDS[str(table.iloc[7, k]).strip()]
        wl = pd.to_numeric(table.iloc[10:, k], errors="coerce").to_numpy()
        yield name, common, wl, pd.to_numeric(table.iloc[10:, k + 1], errors="coerce").to_numpy()


def read_wide(
    path: str, bands: list[tuple[str, str]], scale: float = 1.0, columns: list[int] | None = None
) -> Callable[[Path], Iterator[Band]]:
    """Reader for a wide CSV; ``columns`` picks (and orders) the band columns after the wavelength column."""

    def read(data: Path) -> Iterator[Band]:
        table = pd.read_csv(data / "srf" / path, encoding="utf-8-sig")
        if columns is not None:
            table = table.iloc[:, [0, *columns]]
        yield from _columns(table, bands, scale)

    return read


def read_hyperion(data: Path) -> Iterator[Band]:
    table = pd.read_csv(data / "srf/EO-1_Hyperion_band_centers_fwhm.csv")
    table = table[table["not_calibrated"].isna()]
    yield from _gaussian_bands(table["center_wavelength_nm"], table["fwhm_nm"], [f"B{b:03d}" for b in table["band"]])


def read_aviris(data: Path) -> Iterator[Band]:
    table = pd.read_csv(
        data / "hsi/indian_pines_aviris_meta/92AV3C.spc", sep=r"\s+", skiprows=2, header=None,
        names=["center", "fwhm", "center_std", "fwhm_std", "channel"],
    )
    yield from _gaussian_bands(table["center"], table["fwhm"], [f"C{int(c)}" for c in table["channel"]])


def _gaussian_bands(center: pd.Series, fwhm: pd.Series, names: list[str]) -> Iterator[Band]:
    curves = srf.gaussian(center.to_numpy(float), fwhm.to_numpy(float), names=names)
    wl = curves["wavelength"].to_numpy()
    for name, row in zip(names, curves.to_numpy(), strict=True):
        yield name, "", wl, row


SENSORS = [
    *(
        Sensor(f"sentinel-2{u[-1].lower()}", f"agency_sources/S2A_MSI_RSR.xlsx sheet 'Spectral Responses ({u})'", ESA,
               read_sentinel2(u), f"Sentinel-2{u[-1]}_MSI.csv",
               {b: b.lstrip("B0") for b in S2_COMMON} | {"B8A": "8A"})
        for u in ("S2A", "S2B", "S2C")
    ),
    Sensor("landsat-5-tm", "agency_sources/L5_TM_RSR.xlsx", USGS, read_usgs_tm("L5_TM_RSR.xlsx"), "Landsat-5_TM.csv"),
    Sensor("landsat-7-etm", "agency_sources/L7_ETM_RSR.xlsx", USGS, read_usgs_tm("L7_ETM_RSR.xlsx"), "Landsat-7_ETM+.csv"),
    Sensor("landsat-8-oli", "agency_sources/L8_OLI_RSR.xlsx", USGS, read_usgs_oli("L8_OLI_RSR.xlsx"), "Landsat-8_OLI.csv"),
    Sensor("landsat-9-oli2", "agency_sources/L9_OLI2_RSR.xlsx", USGS, read_usgs_oli("L9_OLI2_RSR.xlsx"), "Landsat-9_OLI-2.csv"),
    Sensor("modis-terra", "agency_sources/MODIS_PFM_IB_OOB_RSR_merged.xls (Terra PFM, in-band + out-of-band)", NASA,
           read_modis, "Terra_MODIS.csv", main_lobe=True),
    Sensor("aster", "Terra_ASTER_VNIR_SWIR_from_agency_xlsx.csv (agency_sources/Terra_ASTER_RSR.xlsx, bands 1-9)",
           "NASA/METI, public domain", read_aster),
    Sensor("eo-1-ali", "agency_sources/EarthObservation-1_ALI_SPECTRAL_TABLE.XLS (MIT/LL 2000-06-23)", NASA, read_ali,
           "EO-1_ALI.csv"),
    Sensor("planetscope-dove-0c-0d", "agency_sources/PlanetScope_RSR_SatID_0c_0d.csv", PLANET,
           read_wide("agency_sources/PlanetScope_RSR_SatID_0c_0d.csv", FOUR_BAND, 1000.0), "PlanetScope_Dove_0c.csv"),
    Sensor("planetscope-dove-0e", "agency_sources/PlanetScope_RSR_SatID_0e.csv", PLANET,
           read_wide("agency_sources/PlanetScope_RSR_SatID_0e.csv", FOUR_BAND, 1000.0), "PlanetScope_Dove_0e.csv"),
    Sensor("planetscope-dove-0f-10", "agency_sources/PlanetScope_RSR_SatID_0f_10.csv", PLANET,
           read_wide("agency_sources/PlanetScope_RSR_SatID_0f_10.csv", FOUR_BAND, 1000.0), "PlanetScope_Dove_0f.csv"),
    Sensor("planetscope-dove-r", "agency_sources/PlanetScope_RSR_dove_r.csv", PLANET,
           read_wide("agency_sources/PlanetScope_RSR_dove_r.csv", FOUR_BAND), "PlanetScope_DoveR_22.csv"),
    Sensor("planetscope-superdove", "agency_sources/PlanetScope_RSR_Superdove.csv", PLANET,
           read_wide("agency_sources/PlanetScope_RSR_Superdove.csv", SUPERDOVE), "PlanetScope_SuperDove_8band.csv"),
    Sensor("rapideye", "agency_sources/RapidEye_RSR.csv", PLANET,
           read_wide("agency_sources/RapidEye_RSR.csv", RAPIDEYE, 1000.0), "RapidEye.csv"),
    *(
        Sensor(f"skysat-{group}", f"agency_sources/{file}", PLANET,
               read_wide(f"agency_sources/{file}", [*FOUR_BAND, ("PAN", "pan")], 1000.0))
        for group, file in (("1-2", "Skysat_RSR_Skysat1.csv"), ("3-13", "Skysat_RSR_Skysat3.csv"),
                            ("14-19", "Skysat_RSR_Skysat14-SkySat19.csv"))
    ),
    Sensor("pleiades-1a", "i_atcorr2_processed/pleiades1a.csv", VENDOR,
           read_wide("i_atcorr2_processed/pleiades1a.csv", AIRBUS), "Pleiades-1A.csv"),
    Sensor("pleiades-1b", "i_atcorr2_processed/pleiades1b.csv", VENDOR,
           read_wide("i_atcorr2_processed/pleiades1b.csv", AIRBUS), "Pleiades-1B.csv"),
    Sensor("spot-6", "i_atcorr2_processed/spot6.csv", VENDOR, read_wide("i_atcorr2_processed/spot6.csv", AIRBUS),
           "SPOT-6.csv"),
    Sensor("spot-7", "i_atcorr2_processed/spot7.csv", VENDOR, read_wide("i_atcorr2_processed/spot7.csv", AIRBUS),
           "SPOT-7.csv"),
    Sensor("worldview-2", "i_atcorr2_processed/worldview2.csv", VENDOR,
           read_wide("i_atcorr2_processed/worldview2.csv", [*WV_VNIR, ("PAN", "pan")], columns=[*range(2, 10), 1]),
           "WorldView-2.csv"),
    Sensor("worldview-3", "i_atcorr2_processed/worldview3.csv", VENDOR,
           read_wide("i_atcorr2_processed/worldview3.csv", [*WV_VNIR, *WV3_SWIR, ("PAN", "pan")],
                     columns=[*range(2, 18), 1]),
           "WorldView-3.csv"),
    Sensor("quickbird-2", "i_atcorr2_processed/quickbird2.csv", VENDOR,
           read_wide("i_atcorr2_processed/quickbird2.csv", [*FOUR_BAND, ("PAN", "pan")], columns=[2, 3, 4, 5, 1]),
           "QuickBird-2.csv", {"B1": "1", "B2": "2", "B3": "3", "B4": "4", "PAN": "PAN"}),
    Sensor("geoeye-1", "i_atcorr2_processed/geoeye1.csv", VENDOR,
           read_wide("i_atcorr2_processed/geoeye1.csv", [*FOUR_BAND, ("PAN", "pan")], columns=[2, 3, 4, 5, 1]),
           "GeoEye-1.csv", {"B1": "Blue", "B2": "Green", "B3": "Red", "B4": "NIR", "PAN": "PAN"}),
    Sensor("ikonos", "i_atcorr2_processed/ikonos.csv", VENDOR,
           read_wide("i_atcorr2_processed/ikonos.csv", [*FOUR_BAND, ("PAN", "pan")], columns=[2, 3, 4, 5, 1]),
           "IKONOS-2.csv", {"B1": "2", "B2": "3", "B3": "4", "B4": "5", "PAN": "1"}),
    Sensor("hyperion", "EO-1_Hyperion_band_centers_fwhm.csv (198 calibrated bands), Gaussian SRFs",
           "MIT (chryss/pygaarst)", read_hyperion),
    Sensor("aviris", "hsi/indian_pines_aviris_meta/92AV3C.spc (1992 calibration, 220 channels), Gaussian SRFs",
           "Purdue, Landgrebe 1998", read_aviris),
]
ACOLITE_ORDER = {  # sensors whose acolite band ids are not our names: ours in acolite's order
    "modis-terra": ["B8", "B9", "B3", "B10", "B11", "B12", "B4", "B1", "B13", "B14", "B15", "B2", "B16", "B5", "B6", "B7"],
    "eo-1-ali": ["PAN", "B1p", "B1", "B2", "B3", "B4", "B4p", "B5p", "B5", "B7"],
    "worldview-2": [*(b for b, _ in WV_VNIR), "PAN"],
    "worldview-3": [*(b for b, _ in WV_VNIR), *(b for b, _ in WV3_SWIR), "PAN"],
    "pleiades-1a": [b for b, _ in AIRBUS], "pleiades-1b": [b for b, _ in AIRBUS],
    "spot-6": [b for b, _ in AIRBUS], "spot-7": [b for b, _ in AIRBUS],
    "rapideye": [b for b, _ in RAPIDEYE], "planetscope-superdove": [b for b, _ in SUPERDOVE],
    **{s: [b for b, _ in FOUR_BAND] for s in ("planetscope-dove-0c-0d", "planetscope-dove-0e",
                                              "planetscope-dove-0f-10", "planetscope-dove-r")},
}
_MODIS_WINDOW = (
    "acolite's MODIS curve keeps a different spectral window (part of the out-of-band scan, e.g. to 870 nm for "
    "B13/B14); ours keeps the in-band main lobe of the NASA PFM file"
)
_IKONOS = (
    "acolite's IKONOS-2 curves are a different compilation (centroids 1.5-16 nm off, B4 791.6 nm); ours are the "
    "DigitalGlobe curves of i.atcorr2"
)
EXCLUDED: dict[tuple[str, str], str] = {  # (sensor, band) -> reason it is left out of the strict 1 nm check
    ("landsat-5-tm", "B4"): "acolite's L5 TM B4 is another version; the USGS xlsx and i.atcorr2 agree on 838.15 nm",
    **{("modis-terra", band): _MODIS_WINDOW for band in ("B6", "B8", "B13", "B14")},
    **{("ikonos", band): _IKONOS for band in ("B1", "B2", "B3", "B4", "PAN")},
}


def clean(
    wl: np.ndarray, response: np.ndarray, zero_filled: bool, main_lobe: bool
) -> tuple[np.ndarray, np.ndarray] | None:
    """Cleaned response on the 1 nm grid (integer nm), or None for a band peaking outside the reflective range.

    ``zero_filled``: the file zero-fills a band's missing samples on a merged grid, so its zeros are dropped and
    the band is interpolated across them; in the other (agency) files zeros are measurements and stay.
    ``main_lobe``: keep only the contiguous run of samples above 0.1 % of the peak that holds the peak (drops the
    out-of-band scan appended to an in-band measurement).
    """
    keep = np.isfinite(wl) & np.isfinite(response)
    wl, response = wl[keep], np.clip(response[keep], 0.0, None)
    if zero_filled:
        wl, response = wl[response > 0], response[response > 0]
    order = np.argsort(wl, kind="stable")
    wl, response = wl[order], response[order]
    if response.max() <= 0 or not RANGE_NM[0] <= wl[np.argmax(response)] <= RANGE_NM[1]:
        return None
    if main_lobe:
        zeros, peak = np.flatnonzero(response <= MAIN_LOBE_FLOOR * response.max()), np.argmax(response)
        lo, hi = zeros[zeros < peak].max(initial=0), zeros[zeros > peak].min(initial=response.size - 1)
        wl, response = wl[lo : hi + 1], response[lo : hi + 1]
    inside = (wl >= RANGE_NM[0]) & (wl <= RANGE_NM[1])
    wl, response = wl[inside], response[inside]
    grid = np.arange(np.ceil(wl[0]), np.floor(wl[-1]) + 1.0)
    values = np.interp(grid, wl, response)
    positive = np.flatnonzero(values > 0)
    grid, values = grid[positive[0] : positive[-1] + 1], values[positive[0] : positive[-1] + 1]
    return grid, values / values.max()


def build(data: Path) -> pd.DataFrame:
    """Long table (sensor, band, common_name, wavelength, response, source, licence) of all library sensors."""
    rows = []
    for sensor in SENSORS:
        for name, common, wl, response in sensor.read(data):
            cleaned = clean(np.asarray(wl, float), np.asarray(response, float), sensor.source.startswith("i_atcorr2"), sensor.main_lobe)
            if cleaned is None:
                print(f"  {sensor.name} {name}: outside {RANGE_NM} nm (thermal), left out")
                continue
            grid, values = cleaned
            rows.append(pd.DataFrame({
                "sensor": sensor.name, "band": name, "common_name": common, "wavelength": grid.astype(int),
                "response": values, "source": sensor.source, "licence": sensor.licence,
            }))
    return pd.concat(rows, ignore_index=True)


def acolite_centroids(data: Path, sensor: Sensor, ours: list[str]) -> dict[str, float]:
    """Centroids (nm) of the acolite reference curves, keyed by our band names."""
    table = pd.read_csv(data / "srf/acolite_gpl3" / sensor.acolite, dtype={"band": str})
    ids = list(dict.fromkeys(table["band"]))
    mapping = sensor.acolite_bands or dict(zip(ACOLITE_ORDER.get(sensor.name, ids), ids, strict=True))
    out = {}
    for band in ours:
        group = table[table["band"] == mapping.get(band, band.lstrip("B"))]
        if len(group):
            wl = group["wavelength_nm"].to_numpy(float)
            grid = np.arange(np.ceil(wl.min()), np.floor(wl.max()) + 1.0)
            response = np.interp(grid, wl, np.clip(group["response"].to_numpy(float), 0.0, None))
            out[band] = float(srf.band_centroid(grid, response))
    return out


def crosscheck(data: Path, library: pd.DataFrame) -> pd.DataFrame:
    """Per band: our centroid, the reference centroid (acolite where it has it), its source, any exclusion reason."""
    rows = []
    for sensor in SENSORS:
        bands = library[library["sensor"] == sensor.name].groupby("band", sort=False)
        ours = {band: srf.band_centroid(g["wavelength"].to_numpy(float), g["response"].to_numpy()) for band, g in bands}
        reference = acolite_centroids(data, sensor, list(ours)) if sensor.acolite else {}
        for band, value in ours.items():
            ref = reference.get(band, np.nan)
            source = f"acolite_gpl3/{sensor.acolite}" if np.isfinite(ref) else "none (no independent reference)"
            rows.append({"sensor": sensor.name, "band": band, "centroid_ours": round(value, 3),
                         "centroid_reference": round(ref, 3), "source": source,
                         "excluded": EXCLUDED.get((sensor.name, band), "")})
    return pd.DataFrame(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    args = parser.parse_args()
    library = build(args.data)
    library["response"] = library["response"].round(5)
    table = crosscheck(args.data, library)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    library[library["response"] > 0].to_csv(OUT, index=False, compression={"method": "gzip", "mtime": 0})
    table["difference"] = table["centroid_ours"] - table["centroid_reference"]
    with pd.option_context("display.max_rows", None, "display.width", 160):
        print(table.dropna(subset=["centroid_reference"]).drop(columns="excluded").to_string(index=False))
    CROSSCHECK.parent.mkdir(parents=True, exist_ok=True)
    table.drop(columns="difference").to_csv(CROSSCHECK, index=False)
    strict = table.dropna(subset=["difference"])
    strict = strict[strict["excluded"] == ""]
    worst = strict.loc[strict["difference"].abs().idxmax()]
    print(f"{library['sensor'].nunique()} sensors, {len(table)} bands, {len(strict)} cross-checked; "
          f"worst |difference| {abs(worst['difference']):.3f} nm ({worst['sensor']} {worst['band']})")
    bad = strict[strict["difference"].abs() > TOLERANCE_NM]
    if len(bad):
        print(f"FAILED: {len(bad)} band(s) differ from the reference by more than {TOLERANCE_NM} nm:\n{bad}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
