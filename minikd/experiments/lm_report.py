"""The summary of :func:`minikd.experiments.lm.run_lm`'s runs (means and spreads over seeds,
paired gains, sample statistics) and its text table."""

from __future__ import annotations

import math
from dataclasses import asdict

import numpy as np

from .report import format_table

__all__ = ["METHOD_NAMES", "lm_report", "summarise"]

METHOD_NAMES = {"scratch": "student, scratch", "forward_kl": "student, forward KL",
                "reverse_kl": "student, reverse KL", "generalized_jsd": "student, JSD"}


def _pm(stats, digits=3):
    return f"{stats['mean']:.{digits}f} ± {stats['std']:.{digits}f}"


def _num(value, fmt):
    return "-" if value is None else fmt.format(value)


def _arch(config):
    return (f"k={config['context']}, d={config['embed_dim']}, "
            f"h={'-'.join(str(h) for h in config['hidden'])}")


def _tuned_note(setup, tuned):
    if setup["lr"] is not None or setup["scratch_lr"] is not None:
        return " (as given)"
    if tuned:
        return " (each the best for its loss on the validation names)"
    return (" (tuned on the validation names for the default k=8, d=8, h=32 student, 1 epoch, "
            "T = 1, alpha = 1: not re-tuned for this setup)")


def _teacher_line(t):
    c = t["config"]
    line = f"teacher: {_arch(c)}, dropout {c['dropout']:g}, {t['n_params']:,} parameters, "
    if t["source"] == "shipped":
        r = t["recipe"]
        line += (f"shipped (trained by `minikd lm --train-teacher`: seed {r['seed']}, "
                 f"{r['epochs']} epochs of batch {r['batch_size']}, Adam lr {r['lr']:g})")
    elif t["source"] == "trained":
        r = t["recipe"]
        line += f"trained now (seed {r['seed']}, {r['epochs']} epochs, Adam lr {r['lr']:g})"
    else:
        line += f"from {t['source']}"
    return line + f"; parameters sha256 {t['sha256'][:16]}"


def lm_report(r):
    """The table ``minikd lm`` prints."""
    st, d, t, s = r["setup"], r["data"], r["teacher"], r["summary"]
    n = st["seeds"]
    soft = f"T = {st['temperature']:g}, alpha = {st['alpha']:g}, JSD beta = {st['beta']:g}"
    lines = [
        f"minikd lm: US Census 1990 names, {d['names'][0]:,} train / {d['names'][1]:,} val / "
        f"{d['names'][2]:,} test names ({d['characters'][0]:,} / {d['characters'][1]:,} / "
        f"{d['characters'][2]:,} characters), {n} seed{'s' if n > 1 else ''}, "
        f"{r['seconds']:.1f} s",
        _teacher_line(t),
        f"students: {_arch({**st, 'context': st['context']})}, {r['student']['n_params']:,} "
        f"parameters; each {st['epochs']} epoch{'s' if st['epochs'] > 1 else ''} = "
        f"{d['steps']:,} Adam steps of batch {st['batch_size']}; {soft}",
        "Adam learning rates: " + ", ".join(f"{METHOD_NAMES[m].removeprefix('student, ')} "
                                            f"{lr:g}" for m, lr in r["lrs"].items())
        + _tuned_note(st, r["lrs_tuned"]),
        "",
    ]
    rows = [["teacher", f"{t['test_nll']:.3f}", f"{t['bits']:.3f}", "-", "-",
             _num(t["mean_length"], "{:.2f}"), _num(t["novel"], "{:.0%}")]]
    for m, v in s.items():
        g = v["gain"]
        rows.append([METHOD_NAMES[m], _pm(v["test_nll"]), _pm(v["bits"]),
                     "-" if m == "scratch" else f"{g['mean']:+.3f} ± {g['std']:.3f}",
                     "-" if m == "scratch" else f"{g['wins']}/{g['seeds']}",
                     _num(v["mean_length"] and v["mean_length"]["mean"], "{:.2f}"),
                     _num(v["novel"] and v["novel"]["mean"], "{:.0%}")])
    lines.append(format_table(["model", "test NLL (nats/char)", "bits/char",
                               "gain over scratch (nats)", "wins", "mean length", "novel"],
                              rows))
    lines += ["", f"gain: the scratch student's test NLL minus the distilled one's, same seed, "
              f"same initial weights and mini-batches (> 0: distillation helped); mean ± std "
              f"over {n} seed{'s' if n > 1 else ''}. Test names have mean length "
              f"{d['mean_length']:.2f}; 'novel' = sampled names not in the training names.",
              ""]
    lines.append(f"sampled names (seed {st['first_seed']}):")
    for name, samples in [("teacher", t["samples"])] + [(METHOD_NAMES[m], v["samples"])
                                                        for m, v in s.items()]:
        lines.append(f"  {name + ':':22} {' '.join(x or '(empty)' for x in samples)}")
    lines += ["", _verdict(s)]
    return "\n".join(lines)


def _verdict(s):
    """One plain sentence per distilled student: better, worse or within the spread."""
    parts = []
    for m, v in s.items():
        if m == "scratch":
            continue
        g = v["gain"]
        if g["mean"] > g["std"] and g["wins"] == g["seeds"]:
            word = "beat"
        elif -g["mean"] > g["std"] and g["wins"] == 0:
            word = "did worse than"
        else:
            word = "did not clearly differ from"
        parts.append(f"{METHOD_NAMES[m].removeprefix('student, ')} {word} scratch "
                     f"({g['mean']:+.3f} ± {g['std']:.3f} nats/char)")
    return ("verdict: " + "; ".join(parts) + ".") if parts else ""


def _mean_std(values):
    """Mean and sample std over seeds (None when a value is missing: no samples drawn)."""
    if any(v is None for v in values):
        return None
    a = np.asarray(values, dtype=np.float64)
    return {"mean": float(a.mean()), "std": float(a.std(ddof=1)) if a.size > 1 else 0.0}


def _sample_stats(samples, train_names):
    """Mean length and share of names not in the training names (None without samples)."""
    if not samples:
        return {"mean_length": None, "novel": None}
    return {"mean_length": float(np.mean([len(s) for s in samples])),
            "novel": float(np.mean([s not in train_names for s in samples]))}


def summarise(setup, data, teacher, runs, methods, n_params, seconds):
    r"""The result dict of :func:`~minikd.experiments.lm.run_lm` from its per-run records.

    The gain of method m on seed s is :math:`\mathrm{NLL}(\text{scratch}_s) - \mathrm{NLL}(m_s)`
    (test NLL in nats per character; > 0: the distilled student is better); bits are
    nats / ln 2.
    """
    train_names = set(data.names.train)
    by = {(r["method"], r["seed"]): r for r in runs}
    seeds = sorted({r["seed"] for r in runs})
    summary = {}
    for m in methods:
        nll = [by[m, s]["test_nll"] for s in seeds]
        gain = [by["scratch", s]["test_nll"] - by[m, s]["test_nll"] for s in seeds]
        stats = [_sample_stats(by[m, s]["samples"], train_names) for s in seeds]
        summary[m] = {"test_nll": _mean_std(nll),
                      "bits": _mean_std([v / math.log(2) for v in nll]),
                      "val_nll": _mean_std([by[m, s]["val_nll"] for s in seeds]),
                      "gain": {**_mean_std(gain), "per_seed": gain,
                               "wins": int(sum(g > 0 for g in gain)), "seeds": len(gain)},
                      "mean_length": _mean_std([st["mean_length"] for st in stats]),
                      "novel": _mean_std([st["novel"] for st in stats]),
                      "samples": by[m, seeds[0]]["samples"][:8]}
    teacher.update(_sample_stats(teacher["samples"], train_names))
    teacher["bits"] = teacher["test_nll"] / math.log(2)
    teacher["samples"] = teacher["samples"][:8]
    names = data.names
    return {"setup": {**asdict(setup), "hidden": list(setup.hidden),
                      "methods": list(setup.methods)},
            "data": {"names": [len(names.train), len(names.val), len(names.test)],
                     "characters": [int(data.y_train.size), int(data.y_val.size),
                                    int(data.y_test.size)],
                     "mean_length": float(np.mean([len(n) for n in names.test])),
                     "steps": setup.epochs * -(-int(data.y_train.size) // setup.batch_size)},
            "lrs": {m: setup.learning_rate(m) for m in methods}, "lrs_tuned": setup.lrs_tuned,
            "teacher": teacher, "student": {"n_params": n_params},
            "runs": [{k: v for k, v in r.items() if k != "samples"} for r in runs],
            "summary": summary, "seconds": seconds}
