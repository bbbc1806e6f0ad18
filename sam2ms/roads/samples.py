"""The road graphs ``sam2ms eval --apls`` scores, one pair per evaluation window: the label's and
the prediction's, both in the window's own metric frame (x, y in metres from its top-left corner),
so that APLS's 50 m / 4 m / 10 m and TOPO's 150 m / 30 m / 4 m mean metres on the ground.

The label's graph is read from SpaceNet's GeoJSON centre-lines where the layout has them (built as
the APLS reference builds it: nodes at line ends and shared vertices, see :mod:`.lines`; clipped to
the window), else extracted from the label mask by the prediction's own extraction. A window of a
georeferenced scene is measured with the scene's pixel size (geographic CRSs: metres at its
centre); a plain image counts one pixel as one metre.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sam2ms.data.layouts import Sample
from sam2ms.labels import VECTOR_SUFFIXES, pixel_metres
from sam2ms.metrics import THRESHOLD
from sam2ms.vectors import read_lines

from .extract import mask_to_graph
from .geometry import apply_affine
from .lines import clip_to_box, lines_to_graph


def _georeference(sample: Sample) -> tuple[Any, Any, int]:
    """(transform, crs, height) of the sample's scene; (None, None, height) without one."""
    from sam2ms.geo.rasters import open_raster

    raster = open_raster(sample.image)
    try:
        profile = raster.profile or {}
        return profile.get("transform"), profile.get("crs"), raster.height
    finally:
        raster.close()


def _label_lines_in_pixels(sample: Sample, transform: Any, crs: Any) -> list[np.ndarray]:
    """The GeoJSON centre-lines of ``sample`` as (column, row) positions in the scene's pixels
    (pixel corners at integers), reprojected into the scene's CRS first when theirs differs.
    """
    from rasterio.crs import CRS
    from rasterio.warp import transform_geom

    shapes, lines_crs = read_lines(sample.mask, labels=True)
    if crs != CRS.from_user_input(lines_crs):
        shapes = [transform_geom(lines_crs, crs, g) for g in shapes]
    inverse = ~transform
    lines = []
    for shape in shapes:
        for part in [shape["coordinates"]] if shape["type"] == "LineString" else shape["coordinates"]:
            xy = np.asarray(part, float).reshape(-1, 2)
            lines.append(np.stack(apply_affine(inverse, xy[:, 0], xy[:, 1]), axis=1))
    return lines


def sample_graphs(sample: Sample, label: np.ndarray, prob: np.ndarray, threshold: float = THRESHOLD) -> tuple[Any, Any]:
    """(truth graph, predicted graph) of one evaluation window: ``label`` is its mask and ``prob``
    the prediction at the label's resolution (H x W).
    """
    transform, crs, height = _georeference(sample)
    frame, (sy, sx) = None, (1.0, 1.0)  # pixels
    if transform is not None and crs is not None:
        from affine import Affine  # rasterio's

        sy, sx = pixel_metres(transform, crs, height)
        frame = Affine.scale(sx, sy)  # the window's pixels -> metres from its corner
    proposal = mask_to_graph(prob >= threshold, transform=frame, spacing=(sy, sx))
    if sample.mask.suffix.lower() not in VECTOR_SUFFIXES:
        return mask_to_graph(label, transform=frame, spacing=(sy, sx)), proposal
    left, top, _ = sample.window or (0, 0, 0)
    h, w = label.shape
    parts = [
        part * (sx, sy)
        for line in _label_lines_in_pixels(sample, transform, crs)
        for part in clip_to_box(line - (left, top), w, h)
    ]
    return lines_to_graph(parts), proposal
