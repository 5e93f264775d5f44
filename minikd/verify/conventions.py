r"""Named presets that compute a loss, and its gradient, exactly as a given library does.

The respected KD libraries disagree on what "the KD loss" is: a factor :math:`T^2` or not, the
KL summed over classes and divided by the batch ("batchmean") or by batch times classes
(``nn.KLDivLoss()``'s default ``"mean"``), a cross-entropy instead of a KL, or the mean squared
error of the probabilities. Each preset names one library's choice; its kernel (in
:mod:`minikd.verify.presets`) computes it from minikd's loss kernels (a choice of reduction,
:math:`T^2` and weights), or, where the library's functional form differs, as a thin closed-form
formula.

* :func:`kd_loss_as` — the soft/hard KD blend as RepDistiller, mdistiller, torchdistill,
  TextBrewer, KD_Lib, HF DistilBERT, ``nn.KLDivLoss()``-default code and the Keras example
  compute it.
* :func:`at_loss_as`, :func:`rkd_loss_as` — attention transfer and relational KD, where the
  libraries differ in the functional form, the weights and the epsilons.
* :data:`CONVENTIONS` — the one registry: ``CONVENTIONS[family][name]`` is a
  :class:`Convention` with the library's formula as coded, the repository, commit and file it
  was read from, and the kernel.

Each function here checks its arguments once, then calls the preset's kernel. One weighting
rule for every preset, minikd's: ``alpha`` is the weight of the soft term and ``1 - alpha`` the
weight of the hard cross-entropy (at T = 1). Each :class:`Convention` says how that maps to the
library's own knobs (Keras' ``alpha`` is the *hard* weight, for example). ``docs/verify.md``
tabulates the presets' values on the same inputs.
"""

from __future__ import annotations

from .._validation import (
    as_labels,
    check_choice,
    check_mask,
    check_pair,
    check_temperature,
    check_unit_interval,
    param_error,
)
from ..losses.reduction import LossGrad
from .presets import CONVENTIONS, TOKEN_PRESETS, Convention

__all__ = ["CONVENTIONS", "Convention", "at_loss_as", "kd_loss_as", "rkd_loss_as"]


def kd_loss_as(convention, student_logits, teacher_logits, labels=None, *, temperature=4.0,
               alpha=1.0, mask=None):
    r"""The KD loss and its gradient exactly as a named library computes it.

    .. math::

        L = \alpha\, S_{\text{conv}}(z_s, z_t; T) + (1 - \alpha)\, \frac{1}{N}\sum_n
            -\log \mathrm{softmax}(z_{s,n})_{y_n}, \qquad
        \frac{\partial L}{\partial z_s} = \alpha \frac{\partial S_{\text{conv}}}{\partial z_s}
            + \frac{1 - \alpha}{N} (p_s - \mathrm{onehot}(y))

    where the soft term :math:`S` and its gradient are, with :math:`p^T = \mathrm{softmax}(z/T)`:

    * repdistiller, mdistiller: :math:`S = \frac{T^2}{N}\sum_n \mathrm{KL}(p^T_{t,n} \| p^T_{s,n})`,
      :math:`\partial S/\partial z_s = \frac{T}{N}(p^T_s - p^T_t)`.
    * torchdistill: the same, except for ``alpha == 1`` or ``labels=None``: the bare
      :math:`\frac{1}{N}\sum_n \mathrm{KL}`, unweighted, gradient
      :math:`\frac{1}{NT}(p^T_s - p^T_t)`.
    * textbrewer: :math:`S = -\frac{1}{N}\sum_{n,c} p^T_t \log p^T_s` (no :math:`T^2`), gradient
      :math:`\frac{1}{NT}(p^T_s - p^T_t)`.
    * kd_lib: :math:`S = \frac{T^2}{NC}\sum_{n,c} (p^T_s - p^T_t)^2`, gradient the softmax VJP of
      :math:`\frac{2T^2}{NC}(p^T_s - p^T_t)`.
    * hf_distilbert: batchmean times :math:`T^2` over the M rows selected by ``mask``, gradient
      :math:`\frac{T}{M}(p^T_s - p^T_t)` on them; the hard term skips labels of -100.
    * pytorch_kldivloss_mean: :math:`S = \frac{T^2}{NC}\sum_n \mathrm{KL}`, gradient
      :math:`\frac{T}{NC}(p^T_s - p^T_t)`.
    * keras: :math:`S = \frac{T^2}{N}\sum \bar p_t \log(\bar p_t / \bar p_s)` with
      :math:`\bar p = \mathrm{clip}(p^T, 10^{-7}, 1)`; keras_2020: the same without :math:`T^2`.

    ``CONVENTIONS["kd"][name]`` holds each library's code as written and its source file.

    Parameters
    ----------
    convention : str
        One of ``CONVENTIONS["kd"]``: "repdistiller", "mdistiller", "torchdistill",
        "textbrewer", "kd_lib", "hf_distilbert", "pytorch_kldivloss_mean", "keras",
        "keras_2020".
    student_logits : array_like of shape (N, C)
        Student logits :math:`z_s`. "hf_distilbert" and "textbrewer" also take (..., C), e.g.
        token logits (N, L, V).
    teacher_logits : array_like of shape (N, C)
        Same shape; a constant (no gradient).
    labels : array_like of int of shape (N,), optional
        Class indices for the hard term; needed unless ``alpha == 1``. "hf_distilbert" skips
        positions labelled -100 (its MLM labels); for "torchdistill", None selects the bare KL.
    temperature : float, default 4.0
        T in [1e-6, 1e6], for the soft term.
    alpha : float in [0, 1], default 1.0
        Weight of the soft term (minikd's convention for every preset; see each
        ``Convention.weights`` for the library's own knob).
    mask : array_like of bool of shape (...,), optional
        "hf_distilbert" only: the attention mask selecting the token rows of the soft term.

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray shaped like ``student_logits``, dL/dz_s).

    References
    ----------
    Hinton, Vinyals & Dean (2015), §2 (the soft/hard blend and the T² factor); the libraries'
    files in :data:`CONVENTIONS`.

    Examples
    --------
    >>> z_s = [[1.0, 2.0, 3.0], [0.5, -1.0, 2.0]]
    >>> z_t = [[3.0, 2.0, 1.0], [1.0, 0.0, 1.5]]
    >>> for name in ("repdistiller", "torchdistill", "pytorch_kldivloss_mean", "kd_lib"):
    ...     print(name, round(kd_loss_as(name, z_s, z_t, temperature=4.0).loss, 6))
    repdistiller 0.757999
    torchdistill 0.047375
    pytorch_kldivloss_mean 0.252666
    kd_lib 0.167703
    """
    func = "kd_loss_as"
    check_choice(convention, "convention", func, tuple(CONVENTIONS["kd"]))
    T = check_temperature(temperature, func)
    alpha = check_unit_interval(alpha, "alpha", func)
    ndim = None if convention in TOKEN_PRESETS else 2
    z_s, z_t = check_pair(student_logits, teacher_logits, func, temperature=T, ndim=ndim)
    lead, n_classes = z_s.shape[:-1], z_s.shape[-1]
    if mask is not None:
        if convention != "hf_distilbert":
            raise param_error("mask", func, "None (only 'hf_distilbert' selects token rows)",
                              "a mask")
        mask = check_mask(mask, lead, func)
    if labels is not None:
        ignore_index = -100 if convention == "hf_distilbert" else None
        labels = as_labels(labels, lead, n_classes, func, ignore_index=ignore_index)
    elif alpha != 1.0 and convention != "torchdistill":  # torchdistill: no targets, bare KL
        raise param_error("labels", func, "an integer array of class indices (labels may be "
                          "None only when alpha == 1)", f"None with alpha={alpha!r}")
    kernel = CONVENTIONS["kd"][convention].kernel
    return kernel(z_s, z_t, labels, temperature=T, alpha=alpha, mask=mask)


def at_loss_as(convention, student_maps, teacher_maps):
    r"""The attention-transfer loss and its gradient exactly as a named library computes it.

    .. math::

        q(f)_n = \frac{A_n}{\max(\|A_n\|_2, \epsilon)}, \qquad
        L = \frac{1}{N S}\sum_{n,s} (q(f_s)_{ns} - q(f_t)_{ns})^2 \ \text{(code)}, \quad
        L = \frac{1}{N}\sum_n \|q(f_s)_n - q(f_t)_n\|_2 \ \text{(paper)}

    with :math:`A_n = \frac{1}{C}\sum_c f_{nc}^2` (code) or :math:`\sum_c f_{nc}^2` (paper),
    flattened over the S = H·W positions, and for "kd_lib" :math:`A_n = f_n^2` flattened over
    all C·H·W entries (S = C·H·W). The gradient is that of
    :func:`minikd.attention_transfer_loss`, which computes every preset (see its docstring for
    :math:`\partial L / \partial f_s`). The loss weights (β = 1000) are outside the libraries'
    loss modules and are not applied here.

    Parameters
    ----------
    convention : str
        One of ``CONVENTIONS["at"]``: "repdistiller", "mdistiller", "torchdistill_code",
        "torchdistill_paper", "kd_lib".
    student_maps : array_like of shape (N, C_s, H, W)
        Student activations (any spatial shape ``(N, C_s, ...)`` with at least one axis).
    teacher_maps : array_like of shape (N, C_t, H, W)
        Same N and spatial size; "kd_lib" also needs C_t = C_s. A constant.

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray of shape (N, C_s, H, W)).

    References
    ----------
    Zagoruyko & Komodakis (2017), "Paying More Attention to Attention", §3.1, eq. 2; the
    libraries' files in ``CONVENTIONS["at"]``.

    Examples
    --------
    >>> import numpy as np
    >>> f_s = np.arange(8.0).reshape(1, 2, 2, 2) / 8
    >>> f_t = np.ones((1, 2, 2, 2))
    >>> for name in ("repdistiller", "torchdistill_paper", "kd_lib"):
    ...     print(name, round(at_loss_as(name, f_s, f_t).loss, 6))
    repdistiller 0.044184
    torchdistill_paper 0.420401
    kd_lib 0.069039
    """
    func = "at_loss_as"
    check_choice(convention, "convention", func, tuple(CONVENTIONS["at"]))
    f_s, f_t = check_pair(student_maps, teacher_maps, func, names=("student_maps", "teacher_maps"),
                          match="rows", min_ndim=3, power=2.0)
    flat = convention == "kd_lib"  # it flattens the channels too: C_t must equal C_s
    if f_t.shape[1 if flat else 2:] != f_s.shape[1 if flat else 2:]:
        c_t = f_s.shape[1] if flat else "C_t"
        shape = ", ".join(map(str, (f_s.shape[0], c_t) + f_s.shape[2:]))
        why = ("'kd_lib' flattens the channels: the channel counts must match" if flat
               else "the spatial size of student_maps")
        raise param_error("teacher_maps", func, f"an array of shape ({shape}) ({why})",
                          f"shape {f_t.shape}")
    return CONVENTIONS["at"][convention].kernel(f_s, f_t)


def rkd_loss_as(convention, student_features, teacher_features):
    r"""Relational KD (distance + angle) and its gradient exactly as a named library computes it.

    .. math::

        L = w_d\, L_D(s, t) + w_a\, L_A(s, t), \qquad
        \frac{\partial L}{\partial s} = w_d \frac{\partial L_D}{\partial s}
            + w_a \frac{\partial L_A}{\partial s}

    with :math:`L_D`, :math:`L_A` of :func:`minikd.rkd_distance_loss` and
    :func:`minikd.rkd_angle_loss` (Park et al. 2019, eq. 4-7), and the library's weights:

    * "repdistiller", "mdistiller": :math:`w_d = 25,\ w_a = 50`;
    * "rkd_author" (lenscloth/RKD README), "torchdistill" (sample config): 1 and 2;
    * "kd_lib": 0.5 and 0.5, and its distance term clamps squared distances at
      :math:`10^{-10}` (not :math:`10^{-12}`) and divides by the mean plus :math:`10^{-7}`.

    Parameters
    ----------
    convention : str
        One of ``CONVENTIONS["rkd"]``.
    student_features : array_like of shape (N, F_s)
        Student features, N >= 2; trailing axes beyond the second are flattened (the
        libraries' ``.view(N, -1)``).
    teacher_features : array_like of shape (N, F_t)
        Teacher features, same N; a constant.

    Returns
    -------
    LossGrad
        ``loss`` (float) and ``grad`` (ndarray shaped like ``student_features``).

    References
    ----------
    Park, Kim, Lu & Cho (2019), "Relational Knowledge Distillation", CVPR, §3.2; the
    libraries' files in ``CONVENTIONS["rkd"]``.

    Examples
    --------
    >>> s = [[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]
    >>> t = [[0.0], [1.0], [2.0]]
    >>> for name in ("repdistiller", "rkd_author", "kd_lib"):
    ...     print(name, round(rkd_loss_as(name, s, t).loss, 6))
    repdistiller 8.27396
    rkd_author 0.330958
    kd_lib 0.100664
    """
    func = "rkd_loss_as"
    check_choice(convention, "convention", func, tuple(CONVENTIONS["rkd"]))
    names = ("student_features", "teacher_features")
    s, t = check_pair(student_features, teacher_features, func, names=names, match="rows")
    if s.shape[0] < 2:
        raise param_error(names[0], func, "an array with at least 2 rows (RKD compares pairs of "
                          "examples)", f"shape {s.shape}")
    n = s.shape[0]
    loss, grad = CONVENTIONS["rkd"][convention].kernel(s.reshape(n, -1), t.reshape(n, -1))
    return LossGrad(loss, grad.reshape(s.shape))  # (N, F_s) back to the student's shape
