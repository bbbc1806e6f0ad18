"""model.deepness.onnx in QGIS itself: the Deepness plugin's own map processor over a GeoTIFF, against
``sam2ms-infer model.onnx`` on the same scene.

    python benchmarks/qgis_deepness_check.py --export DIR --plugin DEEPNESS/src --qgis-python PY

DIR holds model.onnx and model.deepness.onnx (``sam2ms-export --deepness``); DEEPNESS/src is the
plugin's source (github.com/PUTvision/qgis-plugin-deepness); PY is a Python that imports ``qgis``
(Debian's python3-qgis) with the plugin's own requirements (onnxruntime <= 1.17, opencv-python-headless,
numpy < 2). Writes a synthetic road scene as a GeoTIFF at the model's resolution, runs the plugin's
MapProcessorSegmentation headless with every parameter from the model's metadata (as "Load default
parameters" fills them), runs sam2ms-infer on model.onnx, and prints one JSON object: the plugin's
tile size, overlap, resolution and threshold as it read them, and the agreement of the two masks.
Not a test: CI has no QGIS.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path


def qgis_side(tif: str, model_path: str, plugin: str, out: str) -> None:
    """In QGIS' Python: the plugin's processing of the whole layer, saved as ``out`` (.npy)."""
    sys.path.insert(0, plugin)
    from unittest.mock import MagicMock

    import numpy as np
    from qgis.core import QgsApplication, QgsProject, QgsRasterLayer

    app = QgsApplication([b""], False)
    app.initQgis()
    from deepness.common.channels_mapping import ChannelsMapping, ImageChannelStandaloneBand
    from deepness.common.processing_overlap import ProcessingOverlap, ProcessingOverlapOptions
    from deepness.common.processing_parameters.map_processing_parameters import ProcessedAreaType
    from deepness.common.processing_parameters.segmentation_parameters import SegmentationParameters
    from deepness.processing.map_processor.map_processor_segmentation import MapProcessorSegmentation
    from deepness.processing.models.segmentor import Segmentor

    layer = QgsRasterLayer(tif, "scene")
    assert layer.isValid(), tif
    QgsProject.instance().addMapLayer(layer)
    mapping = ChannelsMapping()  # as the plugin's widget sets it for an RGB layer
    mapping.set_image_channels([ImageChannelStandaloneBand(i + 1, n) for i, n in enumerate(("red", "green", "blue"))])
    mapping.set_number_of_model_inputs_same_as_image_channels()
    model = Segmentor(model_path)
    read = {
        "model_type": model.get_metadata_model_type(),
        "class_names": model.outputs_names,
        "tile_size": model.get_metadata_tile_size(),
        "tiles_overlap": model.get_metadata_tiles_overlap(),
        "resolution": model.get_metadata_resolution(),
        "seg_thresh": model.get_metadata_segmentation_threshold(),
        "seg_small_segment": model.get_metadata_segmentation_small_segment(),
        "input_shape": [str(d) for d in model.get_input_shape()],
    }
    params = SegmentationParameters(
        resolution_cm_per_px=read["resolution"],
        tile_size_px=read["tile_size"],
        batch_size=2,
        local_cache=False,
        processed_area_type=ProcessedAreaType.ENTIRE_LAYER,
        mask_layer_id=None,
        input_layer_id=layer.id(),
        input_channels_mapping=mapping,
        postprocessing_dilate_erode_size=read["seg_small_segment"],
        processing_overlap=ProcessingOverlap(
            ProcessingOverlapOptions.OVERLAP_IN_PERCENT, percentage=read["tiles_overlap"]
        ),
        pixel_classification__probability_threshold=read["seg_thresh"],
        model=model,
    )
    processor = MapProcessorSegmentation(rlayer=layer, vlayer_mask=None, map_canvas=MagicMock(), params=params)
    processor.run()
    np.save(out, processor.get_result_img())
    Path(out).with_suffix(".json").write_text(json.dumps(read))


def main() -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    p.add_argument("--export", type=Path, required=True)
    p.add_argument("--plugin", type=Path, required=True)
    p.add_argument("--qgis-python", type=Path, required=True)
    p.add_argument("--size", type=int, default=1024)
    args = p.parse_args()

    import numpy as np
    import rasterio
    from rasterio.transform import from_origin

    from sam2ms.data.synth import render_road_scene
    from sam2ms.metrics import mask_iou

    work = Path(tempfile.mkdtemp(prefix="qgis_deepness_"))
    resolution_m = json.loads((args.export / "model.deepness.onnx.json").read_text())["deepness"]["metadata"]
    resolution_m = float(json.loads(resolution_m["resolution"])) / 100
    image, _ = render_road_scene(args.size, args.size, np.random.default_rng(11))
    (work / "in").mkdir()
    tif = work / "in" / "scene.tif"
    profile = {"driver": "GTiff", "height": args.size, "width": args.size, "count": 3, "dtype": "uint8"}
    transform = from_origin(500000, 5800000, resolution_m, resolution_m)
    with rasterio.open(tif, "w", **profile, crs="EPSG:32633", transform=transform) as ds:
        ds.write(np.moveaxis(image, -1, 0))
    plugin_out = work / "deepness.npy"
    subprocess.run(
        [
            str(args.qgis_python),
            __file__,
            "--qgis-side",
            str(tif),
            str(args.export / "model.deepness.onnx"),
            str(args.plugin),
            str(plugin_out),
        ],
        check=True,
        env={"QT_QPA_PLATFORM": "offscreen", "PATH": "/usr/bin:/bin", "HOME": str(work)},
    )
    subprocess.run(
        [
            str(Path(sys.executable).with_name("sam2ms-infer")),
            str(args.export / "model.onnx"),
            str(work / "in"),
            "-o",
            str(work / "out"),
            "--quiet",
        ],
        check=True,
    )
    from PIL import Image

    ours = np.asarray(Image.open(work / "out" / "scene.mask.png")) > 0
    theirs = np.load(plugin_out)[0] == 2  # the plugin's classes: 1 background, 2 road
    h, w = min(ours.shape[0], theirs.shape[0]), min(ours.shape[1], theirs.shape[1])
    print(
        json.dumps(
            {
                "plugin_read": json.loads(plugin_out.with_suffix(".json").read_text()),
                "plugin_result_shape": list(np.load(plugin_out).shape),
                "sam2ms_mask_shape": list(ours.shape),
                "mask_iou": round(mask_iou(ours[:h, :w], theirs[:h, :w]), 5),
                "pixels_differing": int((ours[:h, :w] != theirs[:h, :w]).sum()),
                "road_pixels": int(ours.sum()),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    if sys.argv[1:2] == ["--qgis-side"]:
        qgis_side(*sys.argv[2:6])
    else:
        main()
