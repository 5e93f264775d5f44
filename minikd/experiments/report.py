"""Text tables of the experiments' results, as ``minikd`` prints them (no math: formatting)."""

from __future__ import annotations

__all__ = ["DATASET_NAMES", "OMIT_ROWS", "ROW_NAMES", "deploy_report", "distill_report",
           "format_table", "omit_report", "pm", "sweep_report"]


def _seeds(n):
    return "1 seed" if n == 1 else f"{n} seeds"


def format_table(headers, rows):
    """Left-aligned first column, right-aligned others, two spaces between columns."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = []
    for k, r in enumerate(cells):
        parts = [r[0].ljust(widths[0])] + [c.rjust(w) for c, w in zip(r[1:], widths[1:],
                                                                      strict=True)]
        lines.append("  ".join(parts).rstrip())
        if k == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


DATASET_NAMES = {"mnist1d": "MNIST-1D", "digits": "UCI 8x8 digits", "idx": "IDX (MNIST)"}
ROW_NAMES = {"teacher": "teacher", "scratch": "student, scratch",
              "scratch_wd": "student, scratch + weight decay", "distilled": "student, distilled"}


def pm(stats, scale=100.0, digits=1):
    if stats["mean"] is None:  # not measured (a teacher known only by its logits)
        return "-"
    return f"{scale * stats['mean']:.{digits}f} ± {scale * stats['std']:.{digits}f}"


def kb(nbytes):
    return f"{nbytes / 1024:.1f} KiB"


def arch(sizes):
    return "-".join(str(s) for s in sizes)


def distill_report(r):
    """The text table of :func:`minikd.experiments.run_distill`'s result."""
    st, m, g = r["setup"], r["models"], r["gain"]
    fam = st["family"]
    if fam != "response":
        loss = st["feature_loss"] if fam == "feature" else st["relation_loss"]
        fam += f" ({loss}, beta {r['term_weight']:g})"
    source = r["data"].get("source", st["dataset"])
    given = r.get("teacher_source") == "given logits"
    known = r["summary"]["teacher"]["mean"] is not None
    teacher = (f"teacher: given logits, trained elsewhere (test accuracy "
               f"{'from its test logits' if known else 'unknown: no test logits'})"
               if given else f"teacher {arch(m['teacher']['sizes'])} (dropout "
               f"{st['teacher_dropout']:g}, {st['teacher_epochs']} epochs)")
    lines = [
        f"minikd distill: {DATASET_NAMES.get(source, source)} ({r['data']['n_train']} train / "
        f"{r['data']['n_test']} test, {r['data']['n_features']} features, "
        f"{r['data']['n_classes']} classes), {_seeds(st['seeds'])}, {r['seconds']:.1f} s",
        f"{teacher}; students {arch(m['student']['sizes'])} "
        f"({st['epochs']} epochs); Adam lr {st['lr']:g}, batch {st['batch_size']}",
        f"distillation: {fam}, T = {st['temperature']:g}, alpha = {st['alpha']:g}; "
        f"weight decay of the regularised scratch student {st['weight_decay']:g}",
        "",
    ]
    rows = []
    for name in ("teacher", "scratch", "scratch_wd", "distilled"):
        s = r["summary"][name]
        kind = "teacher" if name == "teacher" else "student"
        rows.append([ROW_NAMES[name], pm(s),
                     "-" if name == "teacher" else pm(s["agreement"]),
                     *(["-", "-", "-"] if m[kind]["n_params"] is None else
                       [f"{m[kind]['n_params']:,}", kb(m[kind]["nbytes"]),
                        f"{1e6 * m[kind]['seconds_per_sample']:.3f}"])])
    lines.append(format_table(["model", "test acc (%)", "agrees w/ teacher (%)", "params",
                                "size", "µs/sample"], rows))
    lines.append("")
    one = st["seeds"] < 2
    for key, what in (("vs_scratch", "scratch"),
                      ("vs_scratch_wd", "scratch + weight decay")):
        v = g[key]
        spread = "" if one else f" ± {100 * v['std']:.1f}"
        lines.append(f"gain of the distilled student over {what}: {100 * v['mean']:+.1f}"
                     f"{spread} points (better on {v['wins']} of {_seeds(v['seeds'])})")
    verdict = r["verdict"]
    if one:
        lines.append("no spread to compare the gain with: a spread needs at least 2 seeds")
    else:
        exceeds = "exceeds" if verdict["gain_exceeds_spread"] else "does NOT exceed"
        lines.append(
            f"the mean gain over scratch {exceeds} the seeds' spread "
            f"({100 * verdict['spread']:.1f} points, the largest std above)")
    t = r["triple"]
    if t["faster"] is None:
        if t["kept"] is not None:
            lines.append(f"the distilled student keeps {100 * t['kept']:.0f}% of the given "
                         "teacher's test accuracy")
        return "\n".join(lines)
    speed = 1.0 + t["faster"]
    faster = f"{speed:.1f}x as fast" if speed >= 2 else f"{100 * t['faster']:.0f}% faster"
    lines.append(
        f"DistilBERT-style: {100 * t['smaller']:.0f}% smaller ({t['size_ratio']:.0f}x fewer "
        f"parameters), {faster} per sample, keeps {100 * t['kept']:.0f}% of the teacher's "
        "accuracy")
    return "\n".join(lines)


OMIT_ROWS = {
    "teacher": "teacher (trained on every class)",
    "scratch": "scratch student (hard labels, never saw the class)",
    "distilled_none": "distilled student, no bias shift",
    "distilled_test_optimised": "  + shift chosen on the TEST set (the paper's; optimistic)",
    "distilled_validation": "  + shift chosen on a labelled validation split",
    "distilled_class_prior": "  + shift matching the class prior (no labels)",
}


def omit_report(r):
    st, d = r["setup"], r["data"]
    c = st["omit"]
    lines = [
        f"minikd omit-class: Hinton et al. (2015) §3 on {DATASET_NAMES[st['dataset']]}: no "
        f"example of class {c} in the transfer set; {_seeds(st['seeds'])}, {r['seconds']:.1f} s",
        f"teacher {arch([d['n_features'], *st['teacher_hidden'], d['n_classes']])} (dropout "
        f"{st['teacher_dropout']:g}, {st['teacher_epochs']} epochs); student "
        f"{arch([d['n_features'], *st['student_hidden'], d['n_classes']])} ({st['epochs']} "
        f"epochs), T = {st['temperature']:g}, alpha = {st['alpha']:g}",
        f"test set: {d['n_test']} examples, {d['n_test_class']} of class {c}"
        + (" (a stratified 30 % drawn from each seed)" if st["dataset"] == "digits" else "")
        + f"; the validation split is {st['val_fraction']:g} of the training data",
        "",
    ]
    rows = []
    for key, label in OMIT_ROWS.items():
        s = r["summary"][key]
        shift = "-" if "shift" not in s else f"{s['shift']['mean']:+.2f} ± {s['shift']['std']:.2f}"
        rows.append([label, pm(s["class_acc"]), pm(s["acc"]), shift])
    lines.append(format_table(["model", f"acc on class {c} (%)", "overall acc (%)",
                                "bias shift"], rows))
    return "\n".join(lines)


def sweep_report(result):
    """The text of :func:`minikd.sweeps.run_sweep`'s result: the gain on the (T, alpha) grid."""
    st, b = result["setup"], result["baseline"]
    lines = [
        f"minikd sweep: {DATASET_NAMES[st['dataset']]}, {_seeds(st['seeds'])}, "
        f"{result['seconds']:.1f} s; teacher {pm(b['teacher'])} %, scratch "
        f"{pm(b['scratch'])} %, scratch + weight decay {pm(b['scratch_wd'])} %",
    ]
    one = st["seeds"] < 2
    header = ["", *(f"alpha = {a:g}" for a in result["alphas"])]
    for key, what in (("gain", "scratch"), ("gain_wd", "scratch + weight decay")):
        lines.append(f"gain of the distilled student over {what}, points"
                     f"{'' if one else ' (mean ± std over seeds)'}:")
        rows = [[f"T = {t:g}"] + [f"{100 * g:+.1f}" + ("" if one else f" ± {100 * sd:.1f}")
                                  for g, sd in zip(gr, sr, strict=True)]
                for t, gr, sr in zip(result["temperatures"], result[key],
                                     result[f"{key}_std"], strict=True)]
        lines.append(format_table(header, rows))
    return "\n".join(lines)


def _speed(faster):
    """``faster`` = t_big / t_small - 1 as DistilBERT words it: "1.63x as fast (+63%)"."""
    return f"{1 + faster:.2f}x as fast ({100 * faster:+.0f}%)"


def deploy_report(r):
    """The text table of :func:`minikd.experiments.deploy.run_deploy`'s result."""
    st, m, d, mach = r["setup"], r["models"], r["data"], r["machine"]
    seeds = list(range(st["first_seed"], st["first_seed"] + st["seeds"]))
    origin = (f"models read from {st['model_dir']}" if st["model_dir"] else
              f"models trained here as 'minikd distill' trains them (T = {st['temperature']:g}, "
              f"alpha = {st['alpha']:g})")
    lines = [
        f"minikd deploy: {DATASET_NAMES[d['dataset']]}, accuracy on the test split "
        f"({d['n_test']} rows); seed{'s' if len(seeds) > 1 else ''} "
        f"{', '.join(map(str, seeds))}; {origin}; {r['seconds']:.1f} s",
        f"machine: {mach['cpu']}, {mach['cores']} cores, {mach['arch']}, {mach['system']}; load "
        f"average {mach['load_average']} at the start, {mach['load_average_before_timing']} "
        f"before timing; onnxruntime {mach['onnxruntime']} and NumPy {mach['numpy']} on "
        f"{mach['threads']} thread{'s' if mach['threads'] > 1 else ''}; latencies are medians "
        f"of {st['repeats']} interleaved blocks, {mach['clock']} clock (seed "
        f"{r['timed_seed']}'s files)",
        "",
    ]
    names = {"teacher": f"teacher {'-'.join(map(str, m['teacher']['sizes']))}",
             "student": f"distilled student {'-'.join(map(str, m['student']['sizes']))}",
             "student_int8": "distilled student, int8"}
    rows = []
    for key, name in names.items():
        acc = m[key]["acc"]
        lat = m[key]["latency"]
        acc_text = f"{100 * acc['mean']:.1f}" + (f" ± {100 * acc['std']:.1f}"
                                                 if len(seeds) > 1 else "")
        rows.append([name, f"{m[key]['n_params']:,}", f"{m[key]['onnx_bytes'] / 1024:.1f} KiB",
                     acc_text]
                    + [f"{1e6 * lat['onnxruntime'][b]:.3f}" for b in ("1", "256")]
                    + [f"{1e6 * lat['numpy'][b]:.3f}" if b in lat["numpy"] else "-"
                       for b in ("1", "256")])
    lines.append(format_table(["model", "params", ".onnx file", "test acc (%)",
                               "ORT µs/sample b=1", "b=256", "NumPy µs/sample b=1", "b=256"],
                              rows))
    lines.append(f"onnxruntime's own cost per call (a graph that returns its input, batch 1): "
                 f"{1e6 * r['runtime_overhead']:.3f} µs")
    lines += ["", "The tutorial's triple (DistilBERT, Sanh et al. 2019: 40% smaller, 60% faster "
                  "at batch 1 = 668 s / 410 s, 97% of the score kept), measured here against "
                  "the teacher:"]
    for key, label in (("student", "float32 student"), ("student_int8", "int8 student")):
        t = r["triple"][key]
        lines.append(
            f"  {label}: {100 * t['smaller']:.0f}% smaller on disk ({t['size_ratio']:.1f}x), "
            f"{_speed(t['faster']['1'])} at batch 1 and {_speed(t['faster']['256'])} at "
            f"batch 256 in onnxruntime, keeps {100 * t['kept']:.1f}% of the teacher's test "
            "accuracy")
    t = r["triple"]["int8_vs_float"]
    agree = sum(m["student_int8"]["agrees_with_float"]) / len(seeds)
    drop = 100 * (m["student_int8"]["acc"]["mean"] - m["student"]["acc"]["mean"])
    lines.append(
        f"  int8 against the float32 student: {100 * t['smaller']:.0f}% smaller, "
        f"{_speed(t['faster']['1'])} at batch 1 and {_speed(t['faster']['256'])} at batch "
        f"256, same prediction on {100 * agree:.1f}% of the test rows, accuracy {drop:+.1f} "
        "points")
    return "\n".join(lines)
