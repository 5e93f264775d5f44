"""docs/verify.md: its tables are exactly what docs/scripts/library_differences.py generates
(no torch needed), every PyTorch one-liner in it agrees with its minikd call, and the
five-minute PyTorch script runs (both where torch is installed)."""

import importlib.util
import math
import re
from pathlib import Path

import numpy as np
import pytest

import minikd
from minikd.verify.gradcheck import normwise_error

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "verify.md"


def _load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gen():
    return _load(ROOT / "docs" / "scripts" / "library_differences.py", "library_differences")


def test_page_tables_are_the_generated_ones(gen):
    text = PAGE.read_text(encoding="utf-8")
    assert gen.render(text) == text, "run: python docs/scripts/library_differences.py"


def test_every_public_loss_has_a_one_liner(gen):
    called = {call.split("(")[0] for call, _, _ in gen.ONE_LINERS}
    wanted = {"cross_entropy", "kl_divergence", "kd_loss", "soft_cross_entropy",
              "distillation_loss", "dkd_loss", "hint_loss", "cosine_loss",
              "attention_transfer_loss", "rkd_distance_loss", "rkd_angle_loss", "sp_loss",
              "pkt_loss", "forward_kl", "reverse_kl", "generalized_jsd", "skew_kl",
              "skew_reverse_kl", "topk_divergence"}
    assert wanted <= called


def test_one_liners_agree_with_minikd(gen):
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F
    from torch import nn

    fixtures = _load(ROOT / "tests" / "data" / "make_torch_fixtures.py", "make_torch_fixtures")
    data = gen.inputs(np.random.default_rng(0))
    for call, code, student in gen.ONE_LINERS:
        api = {name: getattr(minikd, name) for name in minikd.__all__}  # the lazy exports, loaded
        loss, grad = eval(call, api, dict(data))  # noqa: S307 - the table is the test
        ns = {"torch": torch, "F": F, "nn": nn, "math": math, "dkd_loss": fixtures.t_dkd_loss}
        for k, v in data.items():
            if isinstance(v, np.ndarray) and v.dtype.kind == "f":
                ns[k] = torch.tensor(v, requires_grad=(k == student))
            elif isinstance(v, np.ndarray):
                ns[k] = torch.tensor(v)
            else:
                ns[k] = v
        exec(code, ns)  # noqa: S102
        ns["loss"].backward()
        assert ns["loss"].item() == pytest.approx(loss, rel=1e-9), call
        assert normwise_error(ns[student].grad.numpy(), grad) <= 1e-9, call


def test_five_minute_script_runs():
    pytest.importorskip("torch")
    text = PAGE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python-torch\n(.*?)```", text, flags=re.S)
    assert blocks, "docs/verify.md lost its python-torch script"
    ns = {"__name__": "verify_md"}
    for block in blocks:
        exec(compile(block, str(PAGE), "exec"), ns)  # noqa: S102


@pytest.mark.parametrize("module", ["minikd.verify.conventions", "minikd.verify.gradcheck",
                                    "minikd.verify.vectors", "minikd.verify.selfcheck",
                                    "minikd.verify.presets.kd", "minikd.verify.presets.kd_kernels"])
def test_the_verify_floors_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
