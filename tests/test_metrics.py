import numpy as np
import pytest

from sam2ms.metrics import RoadMetrics, mask_iou

pytestmark = pytest.mark.core  # runs without torch: make test-core


def test_hand_computed_image() -> None:
    label = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]])
    prob = np.array([[0.9, 0.2, 0.7, 0.0], [0.8, 0.6, 0.0, 0.0], [0.0] * 4, [0.0] * 4])
    m = RoadMetrics()
    m.update(prob, label)
    r = m.compute()
    # TP = 3 (0.9, 0.8, 0.6), FN = 1 (0.2), FP = 1 (0.7)
    assert r["precision"] == pytest.approx(3 / 4)
    assert r["recall"] == pytest.approx(3 / 4)
    assert r["f1"] == pytest.approx(3 / 4)
    assert r["miou"] == pytest.approx(3 / 5)
    assert r["mdice"] == pytest.approx(6 / 8)
    assert r["rlod"] == pytest.approx(3 / 4)
    assert r["mae"] == pytest.approx(np.abs(prob - label).mean())


def test_dataset_accumulation_differs_from_per_image_mean() -> None:
    m = RoadMetrics()
    # image 1: perfect, 1 road pixel; image 2: 3 road pixels, none found
    m.update(np.array([[1.0, 0.0]]), np.array([[1, 0]]))
    m.update(np.array([[0.0, 0.0, 0.0]]), np.array([[1, 1, 1]]))
    r = m.compute()
    assert r["recall"] == pytest.approx(1 / 4)  # pooled over pixels
    assert r["rlod"] == pytest.approx(0.5)  # mean over images
    assert r["miou"] == pytest.approx(0.5)
    assert r["images"] == 2


def test_empty_image_counts_as_perfect_and_rlod_skips_it() -> None:
    m = RoadMetrics()
    m.update(np.zeros((3, 3)), np.zeros((3, 3)))
    r = m.compute()
    assert r["miou"] == 1.0 and r["mdice"] == 1.0
    assert r["rlod"] == 0.0  # no image with road pixels: mean over nothing
    assert r["f1"] == 0.0


def test_merge_equals_single_accumulator() -> None:
    rng = np.random.default_rng(0)
    probs, labels = rng.random((6, 8, 8)), rng.random((6, 8, 8)) > 0.7
    whole, a, b = RoadMetrics(), RoadMetrics(), RoadMetrics()
    whole.update_batch(probs, labels)
    a.update_batch(probs[:2], labels[:2])
    b.update_batch(probs[2:], labels[2:])
    a.merge(b)
    assert a.compute() == pytest.approx(whole.compute())


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(ValueError, match="shape"):
        RoadMetrics().update(np.zeros((2, 2)), np.zeros((3, 3)))


def test_mask_iou() -> None:
    a = np.array([1, 1, 0, 0], bool)
    b = np.array([1, 0, 1, 0], bool)
    assert mask_iou(a, b) == pytest.approx(1 / 3)
    assert mask_iou(np.zeros(3), np.zeros(3)) == 1.0


def test_agreement_between_two_models() -> None:
    from sam2ms.metrics import agreement

    ref = np.array([[[0.9, 0.9, 0.1, 0.1]]])
    cand = np.array([[[0.8, 0.2, 0.7, 0.1]]])  # TP 1, FN 1, FP 1
    a = agreement(ref, cand)
    assert a["f1"] == pytest.approx(0.5) and a["mask_iou"] == pytest.approx(1 / 3)
    assert a["max_abs"] == pytest.approx(0.7)
    empty = agreement(np.full((1, 2, 2), 0.1), np.full((1, 2, 2), 0.2))
    assert empty["f1"] == 1.0 and empty["mask_iou"] == 1.0  # no road in either: perfect agreement
