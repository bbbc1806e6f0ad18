"""sam2ms.runtime (the ``runtime/`` folder, installed as ``sam2ms.runtime``): lean tiled
inference over tiles and scenes. Never imports torch (a test proves it in a subprocess), nor
anything of ``sam2ms.export``: a deployment host needs numpy, Pillow and its engine library.

Entry points: :func:`sam2ms.runtime.backends.open_model` (TensorRT, ONNX Runtime, PyTorch
backends behind one runner interface) and :func:`sam2ms.runtime.pipeline.run_inference`
(``sam2ms-infer``); ``tiling`` holds the window geometry and blending, ``scenes`` the readers and
writers, ``cuda`` the cuda-python layer, ``check`` the comparison with PyTorch.
"""
