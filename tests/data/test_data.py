"""Dataset layouts from generated files in each dataset's real folder structure."""

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from sam2ms.data import discover, paper_split, patch_origins, write_synthetic_dataset
from sam2ms.data.dataset import Augment, RoadDataset
from sam2ms.errors import UsageError

from conftest import save, scene


def _count(sources: list) -> int:
    return sum(len(s) for s in sources)


def test_patch_origins_like_the_paper() -> None:
    assert patch_origins(1300, 1024) == [0, 276]
    assert patch_origins(1500, 1024) == [0, 476]
    assert patch_origins(1024, 1024) == [0]
    assert patch_origins(2100, 1024) == [0, 538, 1076]


def test_deepglobe_layout(tmp_path: Path) -> None:
    for i in range(3):
        img, lbl = scene(i, 64)
        save(tmp_path / "train" / f"{100 + i}_sat.jpg", img, quality=95)
        save(tmp_path / "train" / f"{100 + i}_mask.png", np.repeat(lbl[..., None] * 255, 3, 2).astype(np.uint8))
    sources = discover(tmp_path, "deepglobe")
    assert _count(sources) == 3 and sources[0][0].window is None
    assert sources[0][0].mask.name == "100_mask.png"


def test_spacenet_layout_cut_into_patches(tmp_path: Path) -> None:
    for i in range(2):
        img, lbl = scene(i, 80)
        save(tmp_path / "images" / f"RGB-PanSharpen_AOI_2_Vegas_img{i + 1}.tif", img)
        save(tmp_path / "masks" / f"AOI_2_Vegas_img{i + 1}.png", (lbl * 255).astype(np.uint8))
    sources = discover(tmp_path, "spacenet", patch=64)
    assert [len(s) for s in sources] == [4, 4]  # 80 -> origins [0, 16] in x and y
    assert {s.window for s in sources[0]} == {(0, 0, 64), (16, 0, 64), (0, 16, 64), (16, 16, 64)}


def test_massachusetts_layout(tmp_path: Path) -> None:
    for split, n in (("train", 2), ("test", 1)):
        for i in range(n):
            img, lbl = scene(i, 96)
            save(tmp_path / split / f"1017{i}_15.tiff", img)
            save(tmp_path / f"{split}_labels" / f"1017{i}_15.tif", (lbl * 255).astype(np.uint8))
    sources = discover(tmp_path, "massachusetts", patch=64)
    assert len(sources) == 3 and all(len(s) == 4 for s in sources)


def test_folder_layout_and_dataset_tensors(synth_folder: Path) -> None:
    train, test = paper_split(discover(synth_folder, "folder"), seed=0)
    assert (len(train), len(test)) == (7, 3)
    ds = RoadDataset(train, 32, Augment(), seed=0)
    item = ds[0]
    assert item["image"].shape == (3, 32, 32) and item["mask"].shape == (1, 32, 32)
    assert set(torch.unique(item["mask"]).tolist()) <= {0.0, 1.0}  # labels stay binary
    # augmentation is seeded per (epoch, index): repeatable, and different across epochs
    again = ds[0]["image"]
    assert torch.equal(item["image"], again)
    ds.set_epoch(1)
    assert not torch.equal(item["image"], ds[0]["image"])


def test_dataset_without_augmentation_matches_plain_preprocessing(synth_folder: Path) -> None:
    from sam2ms.preprocess import normalize

    samples = [s for src in discover(synth_folder, "folder") for s in src]
    ds = RoadDataset(samples, 64)  # same size as the files: resize is the identity
    expected = torch.from_numpy(normalize(np.asarray(Image.open(samples[0].image))))
    assert torch.allclose(ds[0]["image"], expected, atol=1e-5)


def test_paper_split_groups_of_100() -> None:
    sources = [[i] for i in range(250)]
    train, test = paper_split(sources, seed=1)
    assert (len(train), len(test)) == (175, 75)  # 70+70+35 / 30+30+15
    assert sorted(train + test) == list(range(250))
    assert paper_split(sources, seed=1) == (train, test)
    assert paper_split(sources, seed=2) != (train, test)


def test_split_keeps_patches_of_one_image_together() -> None:
    sources = [[(i, p) for p in range(4)] for i in range(20)]
    train, test = paper_split(sources, seed=0)
    assert not {i for i, _ in train} & {i for i, _ in test}


def test_synth_is_deterministic_per_seed(tmp_path: Path) -> None:
    a = write_synthetic_dataset(tmp_path / "a", 2, 64, seed=5)
    b = write_synthetic_dataset(tmp_path / "b", 3, 64, seed=5)
    c = write_synthetic_dataset(tmp_path / "c", 2, 64, seed=6)
    name = "synth_00001.png"
    assert (a / "images" / name).read_bytes() == (b / "images" / name).read_bytes()
    assert (a / "images" / name).read_bytes() != (c / "images" / name).read_bytes()


def test_synth_scenes_have_roads_and_centerlines_are_thinner() -> None:
    from sam2ms.data.synth import render_road_scene

    fractions = {}
    for style in ("boundary", "centerline"):
        fr = []
        for seed in range(6):
            img, lbl = render_road_scene(256, 256, np.random.default_rng(seed), style)
            assert img.dtype == np.uint8 and img.shape == (256, 256, 3) and lbl.shape == (256, 256)
            fr.append(lbl.mean())
        fractions[style] = np.mean(fr)
    assert 0.01 < fractions["boundary"] < 0.3
    assert fractions["centerline"] < fractions["boundary"]


# --- bad input --------------------------------------------------------------------------------


def test_missing_and_empty_folders(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="not found"):
        discover(tmp_path / "nope", "folder")
    with pytest.raises(UsageError, match=r"images/ and masks/|needs"):
        discover(tmp_path, "folder")
    (tmp_path / "images").mkdir()
    (tmp_path / "masks").mkdir()
    with pytest.raises(UsageError, match="no image/mask pairs"):
        discover(tmp_path, "folder")
    with pytest.raises(UsageError, match="unknown layout"):
        discover(tmp_path, "cityscapes")


def test_image_without_mask(tmp_path: Path) -> None:
    img, _ = scene(0, 32)
    save(tmp_path / "images" / "a.png", img)
    (tmp_path / "masks").mkdir()
    with pytest.raises(UsageError, match=r"a\.png: no mask"):
        discover(tmp_path, "folder")


def test_mask_of_other_size(tmp_path: Path) -> None:
    img, _lbl = scene(0, 32)
    save(tmp_path / "images" / "a.png", img)
    save(tmp_path / "masks" / "a.png", np.zeros((16, 32), np.uint8))
    with pytest.raises(UsageError, match=r"a\.png: mask is 32x16 but its image a\.png is 32x32"):
        discover(tmp_path, "folder")


def test_grey_image_is_read_as_grey_rgb(tmp_path: Path) -> None:
    from sam2ms.data.dataset import load_sample

    grey = np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) % 251
    save(tmp_path / "images" / "grey.png", grey.astype(np.uint8))
    save(tmp_path / "masks" / "grey.png", np.zeros((32, 32), np.uint8))
    image, _ = load_sample(discover(tmp_path, "folder")[0][0])
    assert image.shape == (32, 32, 3) and all(np.array_equal(image[..., c], grey) for c in range(3))


def test_unreadable_image(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "x.png").write_bytes(b"garbage")
    save(tmp_path / "masks" / "x.png", np.zeros((8, 8), np.uint8))
    with pytest.raises(UsageError, match=r"x\.png: cannot read"):
        discover(tmp_path, "folder")


def test_image_smaller_than_patch(tmp_path: Path) -> None:
    img, lbl = scene(0, 32)
    save(tmp_path / "images" / "a.tif", img)
    save(tmp_path / "masks" / "a.png", (lbl * 255).astype(np.uint8))
    with pytest.raises(UsageError, match="smaller than the 1024px patch"):
        discover(tmp_path, "spacenet")


def test_rgba_alpha_is_the_valid_mask(tmp_path: Path) -> None:
    from sam2ms.geo.rasters import open_scene

    rgba = np.full((8, 8, 4), 200, np.uint8)
    rgba[..., 3] = 255
    save(tmp_path / "opaque.png", rgba)
    scene = open_scene(tmp_path / "opaque.png")
    image, valid = scene.read(0, 0, 8, 8)
    assert image.shape == (8, 8, 3) and valid is None and not scene.masked  # fully opaque: no mask
    rgba[0, :3, 3] = 0
    Image.fromarray(rgba).save(tmp_path / "alpha.png")
    scene = open_scene(tmp_path / "alpha.png")
    image, valid = scene.read(0, 0, 8, 8)
    assert scene.masked and valid is not None and valid.sum() == 61 and not valid[0, :3].any()
    assert (image == 200).all()
