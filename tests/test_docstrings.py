"""Every public loss documents every parameter it takes (``help(minikd.kd_loss)`` is the manual).

Walks the public losses with :func:`inspect.signature` and checks each parameter's name in the
numpydoc Parameters section (an entry ``name : type`` or a group ``a, b : type`` / ``a, b``).
The parameters whose meaning a type cannot carry (``mask``, ``reduction``, ``ignore_index``)
must also have a description line under their entry.
"""

import inspect
import re

import pytest

import minikd
import minikd.losses

EXPLAINED = ("mask", "reduction", "ignore_index")


def public_losses():
    """The functions of minikd.losses' namespace and the library-preset losses."""
    fns = [getattr(minikd.losses, name) for name in dir(minikd.losses)
           if not name.startswith("_") and inspect.isfunction(getattr(minikd.losses, name))]
    return fns + [minikd.kd_loss_as, minikd.at_loss_as, minikd.rkd_loss_as]


def parameter_entries(doc):
    """``{name: description}`` of a numpydoc Parameters section ('' for an entry without one)."""
    doc = inspect.cleandoc(doc or "")
    section = re.search(r"^Parameters\n-+\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, flags=re.S | re.M)
    if section is None:
        return {}
    lines, entries = section.group(1).splitlines(), {}
    for i, line in enumerate(lines):
        if line and not line.startswith(" "):
            below = lines[i + 1] if i + 1 < len(lines) else ""
            description = below.strip() if below.startswith("    ") else ""
            for name in line.split(" : ")[0].split(","):
                entries[name.strip().lstrip("*")] = description
    return entries


def test_the_walk_sees_the_losses():
    names = {f.__name__ for f in public_losses()}
    assert {"kd_loss", "distillation_loss", "dkd_loss", "forward_kl", "topk_divergence",
            "hint_loss", "sp_loss", "kd_loss_as"} <= names
    assert len(names) >= 25


@pytest.mark.parametrize("fn", public_losses(), ids=lambda f: f.__name__)
def test_every_parameter_is_documented(fn):
    entries = parameter_entries(fn.__doc__)
    params = list(inspect.signature(fn).parameters)
    missing = [p for p in params if p not in entries]
    assert not missing, f"{fn.__name__}'s docstring does not document {missing}"
    bare = [p for p in params if p in EXPLAINED and not entries[p]]
    assert not bare, f"{fn.__name__}'s docstring names {bare} without saying what they do"


def test_the_parser_finds_a_missing_or_bare_parameter():
    doc = """Summary.

    Parameters
    ----------
    x, y : ndarray
        Inputs.
    mask : ndarray of bool, optional
    reduction : str
        How to reduce.

    Returns
    -------
    float
    """
    assert parameter_entries(doc) == {"x": "Inputs.", "y": "Inputs.", "mask": "",
                                      "reduction": "How to reduce."}
    assert "float" not in parameter_entries(doc)


def test_help_of_kd_loss_explains_mask_and_reduction():
    entries = parameter_entries(minikd.kd_loss.__doc__)
    assert "zero gradient" in entries["mask"]
    assert "batchmean" in entries["reduction"]
