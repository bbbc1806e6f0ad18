"""SAM2MS models: ``create_model(name, sam2_checkpoint=..., checkpoint=...)`` and friends."""

from . import zoo as _zoo  # noqa: F401  (registers the models)
from .net import SAM2MS
from .registry import create_model, describe_model, list_models, register_model

__all__ = ["SAM2MS", "create_model", "describe_model", "list_models", "register_model"]
