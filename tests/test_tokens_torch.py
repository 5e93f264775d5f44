"""The token losses against the PyTorch expressions of TRL and DistiLLM, value and autograd
gradient.

Optional: skipped without torch. The torch functions below restate, in float64, the formulas
documented in minikd/losses/{tokens,mixtures,topk}.py and docs/token_losses.md for each library
version (TRL ``GKDTrainer.generalized_jsd_loss`` before and after PR #3043 and PR #4105, the
first log-space version, DistiLLM ``distillm/losses.py``); they are the twins the verification
kit can turn into fixtures.
"""

import math

import numpy as np
import pytest

from minikd.losses import mixtures, tokens, topk

torch = pytest.importorskip("torch")
F = torch.nn.functional


def trl_jsd(s, t, labels=None, beta=0.5, temperature=1.0, version="current"):
    """TRL generalized_jsd_loss, reduction="batchmean"; version in current / pre4105 / legacy /
    logspace (see docs/token_losses.md for the commits)."""
    lq = F.log_softmax(s / temperature, dim=-1)
    lp = F.log_softmax(t / temperature, dim=-1)
    if version == "logspace":
        mix = beta * lq + (1 - beta) * lp  # TRL: beta * student + (1 - beta) * teacher
        jsd = (beta * F.kl_div(mix, lp, reduction="none", log_target=True)
               + (1 - beta) * F.kl_div(mix, lq, reduction="none", log_target=True))
    elif version == "legacy":
        b = torch.tensor(beta, dtype=lq.dtype)
        lm = torch.logsumexp(torch.stack([lq + torch.log(b), lp + torch.log(1 - b)]), dim=0)
        jsd = (beta * F.kl_div(lm, lp, reduction="none", log_target=True)
               + (1 - beta) * F.kl_div(lm, lq, reduction="none", log_target=True))
    elif beta == 0:
        jsd = F.kl_div(lq, lp, reduction="none", log_target=True)
    elif beta == 1:
        jsd = F.kl_div(lp, lq, reduction="none", log_target=True)
    else:
        b = torch.tensor(beta, dtype=lq.dtype)
        lm = torch.logsumexp(torch.stack([lq + torch.log1p(-b), lp + torch.log(b)]), dim=0)
        jsd = (beta * F.kl_div(lm, lp, reduction="none", log_target=True)
               + (1 - beta) * F.kl_div(lm, lq, reduction="none", log_target=True))
    if labels is not None:
        mask = labels != -100
        return jsd[mask].sum() / mask.sum()
    if version == "current":
        return jsd.sum() / jsd.size(0)
    return jsd.sum() / (jsd.size(0) * jsd.size(1))


def distillm(s, t, labels, kind, lam=0.1):
    """DistiLLM's token losses: per-token mean over labels != -100, T = 1."""
    p = F.softmax(t, dim=-1)
    q = F.softmax(s, dim=-1)
    lq = F.log_softmax(s, dim=-1)
    if kind == "skewed_forward_kl":  # cross-entropy against the skewed student
        x = (p * torch.log(lam * p + (1 - lam) * q)).sum(-1)
        x = -x
    elif kind == "skewed_reverse_kl":
        x = (q * (lq - torch.log((1 - lam) * p + lam * q))).sum(-1)
    elif kind == "forward_kl":  # cross-entropy form
        x = -(p * lq).sum(-1)
    else:  # reverse_kl
        x = (q * (lq - F.log_softmax(t, dim=-1))).sum(-1)
    mask = (labels != -100).to(x.dtype)
    return (x * mask).sum() / mask.sum()


def torch_value_grad(fn, z_s, *args, **kw):
    s = torch.tensor(z_s, requires_grad=True)
    loss = fn(s, *[torch.tensor(a) if isinstance(a, np.ndarray) else a for a in args], **kw)
    loss.backward()
    return float(loss.detach()), s.grad.numpy()


@pytest.fixture(scope="module")
def batch():
    rng = np.random.default_rng(42)
    z_s, z_t = rng.normal(size=(3, 5, 9)) * 2, rng.normal(size=(3, 5, 9)) * 2
    labels = rng.integers(0, 9, size=(3, 5))
    labels[0, 3:] = -100
    labels[2, 1] = -100
    return z_s, z_t, labels


@pytest.mark.parametrize("beta", [0.0, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("T", [1.0, 2.5])
def test_trl_current_with_labels(batch, beta, T):
    z_s, z_t, labels = batch
    ref = torch_value_grad(trl_jsd, z_s, z_t, torch.tensor(labels), beta=beta, temperature=T)
    got = mixtures.generalized_jsd(z_s, z_t, labels=labels, beta=beta, temperature=T,
                                 convention="trl", t2_scale=False)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("version, reduction", [("current", "sequence_mean"),
                                                ("pre4105", "batchmean")])
def test_trl_without_labels_before_and_after_pr_4105(batch, version, reduction):
    z_s, z_t, _ = batch
    ref = torch_value_grad(trl_jsd, z_s, z_t, beta=0.3, version=version)
    got = mixtures.generalized_jsd(z_s, z_t, beta=0.3, reduction=reduction, t2_scale=False)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)


@pytest.mark.parametrize("version, convention", [("legacy", "trl_legacy"),
                                                 ("logspace", "trl_logspace")])
@pytest.mark.parametrize("beta", [0.2, 0.5, 0.8])
def test_trl_earlier_versions(batch, version, convention, beta):
    z_s, z_t, labels = batch
    ref = torch_value_grad(trl_jsd, z_s, z_t, torch.tensor(labels), beta=beta, version=version)
    got = mixtures.generalized_jsd(z_s, z_t, labels=labels, beta=beta, convention=convention,
                                 t2_scale=False)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)


def test_distillm_losses(batch):
    z_s, z_t, labels = batch
    keep = labels != -100
    p = np.exp(z_t) / np.exp(z_t).sum(-1, keepdims=True)
    entropy = -(p * np.log(p)).sum(-1)[keep].mean()  # what the cross-entropy forms add
    cases = [("skewed_forward_kl", mixtures.skew_kl(z_s, z_t, alpha=0.1, labels=labels), entropy),
             ("skewed_reverse_kl", mixtures.skew_reverse_kl(z_s, z_t, alpha=0.1, labels=labels), 0),
             ("forward_kl", tokens.forward_kl(z_s, z_t, labels=labels), entropy),
             ("reverse_kl", tokens.reverse_kl(z_s, z_t, labels=labels), 0)]
    for kind, got, offset in cases:
        ref = torch_value_grad(distillm, z_s, z_t, torch.tensor(labels), kind)
        assert got.loss + offset == pytest.approx(ref[0], rel=1e-12), kind
        np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15, err_msg=kind)


def test_topk_renorm_is_gather_then_log_softmax(batch):
    z_s, z_t, labels = batch
    k = 4
    idx = np.argsort(-z_t, axis=-1)[..., :k]
    vals = np.take_along_axis(z_t, idx, -1)

    def gathered(s, v, i, y):
        lq = F.log_softmax(torch.gather(s, -1, i) / 2.0, dim=-1)
        lp = F.log_softmax(v / 2.0, dim=-1)
        kl = F.kl_div(lq, lp, reduction="none", log_target=True).sum(-1)
        mask = y != -100
        return kl[mask].sum() / mask.sum() * 4.0

    ref = torch_value_grad(gathered, z_s, vals, torch.tensor(idx), torch.tensor(labels))
    got = topk.topk_divergence(z_s, vals, idx, labels=labels, temperature=2.0)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)


def test_reverse_kl_matches_kl_div_with_swapped_arguments(batch):
    z_s, z_t, labels = batch

    def rkl(s, t, y):
        kl = F.kl_div(F.log_softmax(t / 3.0, -1), F.log_softmax(s / 3.0, -1), reduction="none",
                      log_target=True).sum(-1)
        mask = y != -100
        return kl[mask].mean() * 9.0

    ref = torch_value_grad(rkl, z_s, z_t, torch.tensor(labels))
    got = tokens.reverse_kl(z_s, z_t, labels=labels, temperature=3.0)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)
    assert math.isfinite(got.loss)


def test_topk_renorm_with_log_probs_at_t_is_gather_then_renormalise(batch):
    # values_kind="log_probs": the teacher's log-probabilities at T, renormalised as they are
    z_s, z_t, labels = batch
    idx = np.argsort(-z_t, axis=-1)[..., :4]
    lp = torch.log_softmax(torch.tensor(z_t) / 2.5, dim=-1).numpy()
    vals = np.take_along_axis(lp, idx, -1)

    def gathered(s, v, i, y):
        ls = torch.gather(F.log_softmax(s / 2.5, dim=-1), -1, i)
        ls = ls - torch.logsumexp(ls, dim=-1, keepdim=True)
        lt = v - torch.logsumexp(v, dim=-1, keepdim=True)
        kl = F.kl_div(ls, lt, reduction="none", log_target=True).sum(-1)
        mask = y != -100
        return kl[mask].sum() / mask.sum()

    ref = torch_value_grad(gathered, z_s, vals, torch.tensor(idx), torch.tensor(labels))
    got = topk.topk_divergence(z_s, vals, idx, values_kind="log_probs", labels=labels,
                               temperature=2.5, t2_scale=False)
    assert got.loss == pytest.approx(ref[0], rel=1e-12)
    np.testing.assert_allclose(got.grad, ref[1], rtol=1e-9, atol=1e-15)
