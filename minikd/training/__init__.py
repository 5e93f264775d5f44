"""The training floor: the mini-batch loop (``fit``, ``train_loop``) and the distiller.

Each validates its data and hyper-parameters once, then calls the loss kernels and the model's
unchecked forward and backward per mini-batch, with BLAS limited to one thread unless told
otherwise (``blas_threads=``, or an enclosing :func:`blas_threads` block).
"""

from .._threads import blas_threads
from .distiller import Distiller, distill
from .history import History
from .loop import NonFiniteLossError, fit, train_loop
