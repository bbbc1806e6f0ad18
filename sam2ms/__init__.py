"""sam2ms: train, export and deploy SAM2MS road-extraction models.

This top-level module stays import-light (no torch): ``sam2ms.runtime`` and
``sam2ms.metrics`` are used on deployment hosts that have only numpy.
"""

__version__ = "0.1.0"
