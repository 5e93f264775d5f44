"""The self-check's registry is explicit and complete: every public loss of minikd is listed in
selfcheck.LOSSES and has an entry in selfcheck.SELF_CHECKS (a new loss that is exported but not
registered fails here), every preset of CONVENTIONS is checked, and the run can fail."""

import inspect
from functools import partial

import numpy as np
import pytest

import minikd
from minikd import losses
from minikd.verify import selfcheck

# Public functions of the losses floor that are not losses (no LossGrad of a student input).
NOT_LOSSES = {"softmax", "log_softmax", "softmax_vjp", "log_softmax_vjp", "init_regressor",
              "regressor_forward", "regressor_backward"}


def _public_functions(namespace):
    """Public functions, kernels aside (they skip the checks; the public loss is checked)."""
    return {name for name, obj in vars(namespace).items()
            if not name.startswith("_") and not name.endswith("_kernel")
            and inspect.isfunction(obj)}


def test_every_exported_loss_is_registered():
    exported = _public_functions(losses) - NOT_LOSSES
    exported |= {"kd_loss_as", "at_loss_as", "rkd_loss_as"}
    missing = exported - set(selfcheck.LOSSES)
    assert not missing, f"register these in minikd/verify/selfcheck.py (LOSSES, SELF_CHECKS): " \
                        f"{sorted(missing)}"
    assert set(selfcheck.LOSSES) <= exported | {"kd_loss_as", "at_loss_as", "rkd_loss_as"}


def test_an_unregistered_loss_fails_the_registry_test(monkeypatch):
    def brand_new_loss(student_logits, teacher_logits):
        return minikd.kd_loss(student_logits, teacher_logits)

    monkeypatch.setattr(losses, "brand_new_loss", brand_new_loss, raising=False)
    with pytest.raises(AssertionError, match="brand_new_loss"):
        test_every_exported_loss_is_registered()


def test_every_top_level_loss_is_registered():
    """A loss exported from the top-level namespace only is caught too."""
    for name in _public_functions(minikd):
        fn = getattr(minikd, name)
        if fn.__module__.startswith("minikd.losses") and name not in NOT_LOSSES:
            assert selfcheck.LOSSES.get(name) is fn, name


def _target(function):
    return function.func if isinstance(function, partial) else function


def test_every_registered_loss_and_every_preset_has_a_self_check():
    checked = {_target(c.function) for c in selfcheck.SELF_CHECKS}
    assert checked == set(selfcheck.LOSSES.values())
    names = [c.name for c in selfcheck.SELF_CHECKS]
    assert len(names) == len(set(names))
    for family, fn in (("kd", minikd.kd_loss_as), ("at", minikd.at_loss_as),
                       ("rkd", minikd.rkd_loss_as)):
        presets = {c.function.args[0] for c in selfcheck.SELF_CHECKS
                   if _target(c.function) is fn}
        assert presets == set(minikd.CONVENTIONS[family]), family


def test_the_step_scale_follows_the_temperature():
    """A loss that takes a temperature is swept over T; one that does not is checked once."""
    for check in selfcheck.SELF_CHECKS:
        fn = _target(check.function)
        takes_t = "temperature" in inspect.signature(fn).parameters
        assert (check.step_scale is not None) == takes_t, check.name
    assert selfcheck.soft(20.0) == 20.0 and selfcheck.blend(20.0) == 1.0
    assert selfcheck.blend(0.5) == 0.5


def test_every_entry_passes_at_several_temperatures():
    rows = selfcheck.gradcheck_losses(temperatures=[20.0], rng=3)  # 0.5, 4: tests/test_cli.py
    failed = [r["detail"] for r in rows if r["status"] != "pass"]
    assert not failed, "\n".join(failed)
    assert len(rows) == len(selfcheck.SELF_CHECKS)


def _broken(scale):
    """kd_loss with its gradient multiplied by ``scale`` (1 = correct)."""
    def loss(z_s, z_t, *, temperature=1.0):
        out = minikd.kd_loss(z_s, z_t, temperature=temperature)
        return minikd.LossGrad(out.loss, scale * out.grad)
    return loss


@pytest.mark.parametrize("scale, status", [(1.0, "pass"), (-1.0, "FAIL"), (1.01, "FAIL")])
def test_the_run_fails_a_wrong_gradient(scale, status):
    check = selfcheck.SelfCheck("k", _broken(scale), selfcheck.logit_pair, selfcheck.soft)
    rows = selfcheck.gradcheck_losses(temperatures=[2.0], checks=[check], rng=0)
    assert [r["status"] for r in rows] == [status]


def test_a_loss_returning_nan_fails():
    def nan_loss(z_s, z_t):
        return minikd.LossGrad(float("nan"), np.zeros_like(z_s))

    check = selfcheck.SelfCheck("nan", nan_loss, selfcheck.logit_pair, None)
    (row,) = selfcheck.gradcheck_losses(checks=[check], rng=0)
    assert row["status"] == "FAIL" and "finite" in row["detail"]


@pytest.mark.parametrize("kwargs, match", [
    ({"temperatures": [0.0]}, "'temperatures' parameter of gradcheck_losses"),
    ({"temperatures": [float("nan")]}, "'temperatures'"),
    ({"tol": -1.0}, "'tol' parameter of gradcheck_losses"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        selfcheck.gradcheck_losses(**kwargs)
