"""sam2ms.export (the ``export/`` folder, installed as ``sam2ms.export``): checkpoint -> ONNX
(FP32, FP16; uint8 or float32 input) -> TensorRT plan, each proving parity with PyTorch.

Entry points: :func:`sam2ms.export.pipeline.run_export` (``sam2ms-export``), ``onnx_export``,
``fp16``, ``parity`` and ``tensorrt_build``. What an artifact is and how its checks are judged
lives in :mod:`sam2ms.artifacts`, shared with the runtime.
"""
