"""sam2ms.calib: calibration data -> explicit Q/DQ INT8 ONNX.

Not implemented yet (see the INT8 issue); nothing here pretends otherwise.
"""
