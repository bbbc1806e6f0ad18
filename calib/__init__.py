"""sam2ms.calib (the ``calib/`` folder, installed as ``sam2ms.calib``): calibration tiles ->
explicit Q/DQ INT8 ONNX, with an accuracy report against FP32 and a sensitivity pass.

Entry point: :func:`sam2ms.calib.pipeline.run_calibrate` (``sam2ms calibrate``, and
``sam2ms-export --int8``). ``data`` samples tiles, ``graph`` decides what stays in float,
``quantize`` holds the quantiser contract and ONNX Runtime's quantiser (``modelopt_quantizer``
NVIDIA's), ``cache`` the calibration cache, ``report`` and ``sensitivity`` the accuracy side.
"""
