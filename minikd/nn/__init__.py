"""The networks floor: ``(out, cache)`` layers, the MLP built from them, optimizers, schedules and
the MLP's model file."""

from .layers import (
    dropout_backward,
    dropout_forward,
    linear_backward,
    linear_forward,
    relu_backward,
    relu_forward,
    tanh_backward,
    tanh_forward,
)
from .mlp import MLP, ForwardCache
from .optim import SGD, Adam, AdamW, NonFiniteUpdateError
from .regressor import init_regressor, regressor_backward, regressor_forward
from .schedules import CosineSchedule, StepSchedule, clip_grad_norm
