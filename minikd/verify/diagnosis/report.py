"""The verdict of :func:`minikd.diagnose` as text: what matched, why, and the line to change.

:func:`format_diagnosis` turns the ranked list of :class:`minikd.verify.diagnosis.match.Match`
into the report ``minikd diagnose`` prints: one match (the variant, its explanation, its public
report, the code as written and the fix), a tie (the candidates and the inputs that would
separate them), or no match (the closest few); then a table of the best ranked variants.
"""

from __future__ import annotations

__all__ = ["format_diagnosis"]

_RERUN = ("run your loss on minikd.diagnose_inputs() (or the file of `minikd diagnose "
          "--make-inputs inputs.npz`) and diagnose again")


def _error(e):
    """An error for people: below 1e-12 it is round-off, whose digits mean nothing."""
    return "<1e-12" if e < 1e-12 else f"{e:.1e}"


def _errors(m):
    grad = "" if m.grad_error is None else f", gradient error {_error(m.grad_error)}"
    return f"value error {_error(m.value_error)}{grad}"


def _candidate(m, indent="  "):
    """The lines that describe one variant: explanation, identical names, report."""
    lines = [f"{indent}{m.explanation}"]
    if m.same_as:
        lines.append(f"{indent}same formula: {', '.join(m.same_as)}")
    lines.append(f"{indent}reported: {m.source}")
    return lines


def _separators(hits):
    """One line per way to separate the tied matches: what, and which pairs it separates.

    The way that separates the most pairs is printed last, as "all of them" or "the others".
    """
    names = [m.name for m in hits]
    pairs = {}
    for m in hits:
        for other, what in m.ties:
            if names.index(other) > names.index(m.name):
                pairs.setdefault(what, []).append(f"{m.name}/{other}")
    ways = sorted(pairs.items(), key=lambda item: len(item[1]))
    lines = [f"  {', '.join(p)}: separated by {what}" for what, p in ways[:-1]]
    what = ways[-1][0]
    lines.append(f"  {'all of them' if len(ways) == 1 else 'the others'}: separated by {what}")
    return lines


def _table(matches, top):
    rows = [("variant", "value", "value error", "grad error", "match")]
    for m in matches[:top]:
        grad = "-" if m.grad_error is None else _error(m.grad_error)
        rows.append((m.name, f"{m.value:.6g}", _error(m.value_error), grad,
                     "yes" if m.matched else ""))
    widths = [max(len(r[k]) for r in rows) for k in range(len(rows[0]))]
    return ["  " + "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
            for r in rows]


def format_diagnosis(matches, *, top=5):
    """The verdict and a table of the ``top`` best ranked variants, as a string.

    Parameters
    ----------
    matches : list of Match
        What :func:`minikd.diagnose` returned, best first.
    top : int, default 5
        How many variants the table shows.

    Returns
    -------
    str
        Lines without a trailing newline.
    """
    hits = [m for m in matches if m.matched]
    lines = []
    if len(hits) == 1:
        m = hits[0]
        lines.append(f"verdict: {m.name} ({_errors(m)})")
        lines += _candidate(m)
        if m.name == "correct":
            lines.append(f"  nothing to fix: {m.fix}")
        else:
            lines.append(f"  yours: {m.code}")
            lines.append(f"  fix:   {m.fix}")
    elif hits:
        lines.append(f"verdict: a tie between {len(hits)} variants on these inputs")
        for m in hits:
            lines.append(f"  {m.name} ({_errors(m)})")
            lines += _candidate(m, indent="    ")
        lines += _separators(hits)
        lines.append(f"  {_RERUN}")
        lines.append(f"  fix (if it is a bug): {hits[0].fix}")
    else:
        lines.append("verdict: no variant matches within the tolerance; the closest are")
        for m in matches[:3]:
            lines.append(f"  {m.name} ({_errors(m)})")
            lines.append(f"    {m.explanation}")
        lines.append(f"  the correct loss: {matches[0].fix}")
    lines.append("")
    lines += _table(matches, top)
    return "\n".join(lines)
