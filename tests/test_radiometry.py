"""The one raster conversion: band choice, stretches against hand-computed values, recorded forms, errors."""

from pathlib import Path

import numpy as np
import pytest

from sam2ms.errors import UsageError
from sam2ms.fileio import write_json
from sam2ms.geo.radiometry import Radiometry, Stretch, from_flags

pytestmark = pytest.mark.core  # runs without torch: make test-core

P = Path("scene.tif")


def _sampler(data: np.ndarray, valid: np.ndarray | None = None):
    return lambda bands, side: (data[[b - 1 for b in bands]], valid)


def test_percentile_stretch_by_hand() -> None:
    band = np.arange(101, dtype=np.uint16).reshape(1, 101)  # percentiles 2/98 of 0..100 are 2 and 98
    data = np.stack([band, band + 100, band * 10])
    stretch = Radiometry().resolve(P, 3, "uint16", ("gray",) * 3, _sampler(data))  # auto: 16-bit -> percentile
    assert stretch.bands == (1, 2, 3)
    assert stretch.low == pytest.approx((2, 102, 20)) and stretch.high == pytest.approx((98, 198, 980))
    out = stretch.apply(data)
    assert out.shape == (1, 101, 3) and out.dtype == np.uint8
    # x = 26 -> (26 - 2) * 255 / 96 = 63.75 -> 64; below low -> 0; above high -> 255
    assert out[0, 26].tolist() == [64, 64, 64]
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 100].tolist() == [255, 255, 255]


def test_percentiles_ignore_nodata_pixels() -> None:
    data = np.array([[[0, 0, 0, 10, 20, 30]]], np.uint16)
    valid = data[0] != 0
    stretch = Radiometry(stretch="minmax").resolve(P, 1, "uint16", ("gray",), _sampler(data, valid))
    assert (stretch.low, stretch.high) == ((10.0,), (30.0,))
    assert stretch.apply(data)[0, 4].tolist() == [128, 128, 128]  # one band is grey RGB; 127.5 rounds to even


def test_fixed_scale_by_hand() -> None:
    r = from_flags(None, None, None, "100:1100", None)
    assert (r.stretch, r.low, r.high) == ("fixed", (100.0,), (1100.0,))
    stretch = r.resolve(P, 3, "uint16", ("red", "green", "blue"), _sampler(np.zeros((3, 1, 1))))
    data = np.array([50, 100, 300, 1100, 4000], np.uint16).reshape(1, 1, 5).repeat(3, axis=0)
    assert stretch.apply(data)[0, :, 0].tolist() == [0, 0, 51, 255, 255]  # (300 - 100) * 0.255 = 51


def test_band_order_and_defaults() -> None:
    data = np.array([10, 20, 30, 40], np.uint8).reshape(4, 1, 1)
    chosen = Radiometry(bands=(3, 2, 1)).resolve(P, 4, "uint8", ("undefined",) * 4, _sampler(data))
    assert Stretch(chosen.bands).apply(data[[2, 1, 0]]).ravel().tolist() == [30, 20, 10]
    # default: the bands marked red/green/blue, in that order (a BGRN file), else the first three
    assert Radiometry().choose_bands(P, 4, ("blue", "green", "red", "undefined")) == (3, 2, 1)
    assert Radiometry().choose_bands(P, 4, ("undefined",) * 4) == (1, 2, 3)
    assert Radiometry().choose_bands(P, 2, ("gray", "alpha")) == (1,)
    with pytest.raises(UsageError, match="2 bands"):
        Radiometry().choose_bands(P, 2, ("gray", "gray"))
    with pytest.raises(UsageError, match=r"band 5 asked for.*4 band"):
        Radiometry(bands=(5, 2, 1)).choose_bands(P, 4, ("undefined",) * 4)


def test_eight_bit_passes_through_untouched() -> None:
    data = np.random.default_rng(0).integers(0, 256, (3, 5, 7), dtype=np.uint8)
    stretch = Radiometry().resolve(P, 3, "uint8", ("red", "green", "blue"), _sampler(data))
    assert stretch.low is None and np.array_equal(stretch.apply(data), np.moveaxis(data, 0, -1))


def test_refusals() -> None:
    with pytest.raises(UsageError, match="uint16 pixels cannot go to the model unstretched"):
        Radiometry(stretch="none").resolve(P, 3, "uint16", ("gray",) * 3, _sampler(np.zeros((3, 1, 1))))
    with pytest.raises(UsageError, match="no valid pixels"):
        Radiometry().resolve(P, 1, "uint16", ("gray",), _sampler(np.zeros((1, 2, 2)), np.zeros((2, 2), bool)))
    with pytest.raises(UsageError, match="--scale and --stats"):
        from_flags(None, None, None, "0:1", Path("s.json"))
    with pytest.raises(UsageError, match="HIGH > LOW"):
        from_flags(None, None, None, "5:1", None)
    with pytest.raises(UsageError, match="--stretch bogus"):
        from_flags(None, "bogus", None, None, None)


def test_stats_file_for_other_bands_is_refused(tmp_path: Path) -> None:
    stats = write_json(
        tmp_path / "stats.json",
        {"format": "sam2ms-stats", "version": 1, "bands": [3, 2, 1], "low": [1, 2, 3], "high": [10, 20, 30]},
    )
    r = from_flags(None, None, None, None, stats)
    assert (r.bands, r.stretch, r.low, r.high) == ((3, 2, 1), "fixed", (1, 2, 3), (10, 20, 30))
    with pytest.raises(UsageError, match="made for bands 3,2,1, not 1,2,3"):
        from_flags("1,2,3", None, None, None, stats)
    write_json(tmp_path / "other.json", {"format": "something-else"})
    with pytest.raises(UsageError, match="not a sam2ms-stats file"):
        from_flags(None, None, None, None, tmp_path / "other.json")


def test_recorded_form_round_trips_and_flags_override_it() -> None:
    trained = Radiometry(bands=(4, 3, 2), stretch="percentile", percentiles=(1.0, 99.0))
    assert Radiometry.from_dict(trained.as_dict()) == trained
    assert from_flags(None, None, None, None, None, trained) == trained  # deployed as trained by default
    assert from_flags(None, "minmax", None, None, None, trained) == Radiometry(
        bands=(4, 3, 2), stretch="minmax", percentiles=(1.0, 99.0)
    )
    assert Radiometry.from_dict(None) == Radiometry()
