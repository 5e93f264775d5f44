"""The training floor: the mini-batch loop (``fit``, ``train_loop``) and the distiller."""

from .distiller import Distiller, distill
from .loop import History, NonFiniteLossError, fit, train_loop
