"""The losses floor: each function returns its value and closed-form gradient (``LossGrad``).

``softmax`` (the temperature softmax and its VJPs), ``response`` (cross-entropy, KL, KD, the
blend; their formulas in ``response_kernels``), ``dkd`` (decoupled KD), ``tokens``, ``mixtures``
and ``topk`` (token-level divergences over (N, L, V); their per-position formulas in
``divergences``), ``features`` (FitNets hints, DistilBERT's cosine, attention transfer) and
``relations`` (RKD, SP, PKT).
"""

from .dkd import dkd_loss
from .features import attention_transfer_loss, cosine_loss, hint_loss
from .mixtures import generalized_jsd, skew_kl, skew_reverse_kl
from .reduction import LossGrad
from .relations import pkt_loss, rkd_angle_loss, rkd_distance_loss, sp_loss
from .response import cross_entropy, distillation_loss, kd_loss, kl_divergence, soft_cross_entropy
from .softmax import log_softmax, log_softmax_vjp, softmax, softmax_vjp
from .tokens import forward_kl, reverse_kl, token_divergence
from .topk import topk_divergence
