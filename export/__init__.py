"""sam2ms.export: checkpoint -> ONNX (FP32/FP16) -> TensorRT plan.

Not implemented yet (see the export issue); nothing here pretends otherwise.
"""
