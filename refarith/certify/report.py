"""Human reports of a certificate: Markdown, and a self-contained HTML page with inline SVG pictures.

Numbers read the way the field reads them (:mod:`refarith.exact.show`): a code in hex, its value as a hex float
and a short decimal; the JSON keeps the exact fractions.  Block counterexamples show only the offending elements,
each with its index, the block's scale and expected/got side by side.  Class totals count every input once (a
vector that several stages compare is one input); the per-stage counts are shown beside them.  The HTML page
draws, with matplotlib when it is installed (the ``report`` extra), where in the input space the mismatches are
(binade x mantissa prefix, per sign, and counts by exponent) and, for blocks, how they spread over the block's
amax and the element position; without matplotlib it says so and shows the tables.
"""

from __future__ import annotations

import html
import io
import re
from pathlib import Path

from refarith.certify.runner import BUCKET_LABELS, BUCKETS, Certificate, Example, Stage, column_names
from refarith.exact.show import show_pair
from refarith.golden.drivers import CLASSES, get_driver
from refarith.golden.fileformat import write_all_atomic
from refarith.spec import parse_spec

SHOWN_ELEMENTS = 4
"""Offending elements of a block counterexample shown before the rest are elided."""
SKIPPED = "asked for (--exhaustive-if-possible) and skipped:"
"""How the reports name an exhaustive stage that was asked for only where possible and has no check to run."""


# ------------------------------------------------------------------ counterexamples, readable
def _index(col: str) -> int | None:
    m = re.search(r"\[(\d+)\]$", col)
    return int(m.group(1)) if m else None


def example_rows(spec_id: str, e: Example) -> tuple[str, list[tuple[str, str, str, str]]]:
    """(the input as shown, rows ``(column, input element, expected, got)`` of the offending columns).

    A vector of up to 4 inputs is shown whole; a block as its size, amax and per-block results, each offending
    element with the input at its index."""
    spec = parse_spec(spec_id)
    d = get_driver(spec)
    in_names = column_names(d.inputs(spec))
    in_ops = d.inputs(spec)
    shown_in = [show_pair(h, v) for h, v in zip(e.inputs, e.input_values)]
    if len(e.inputs) <= 4:
        head = ", ".join(shown_in)
        el = {}
    else:
        name = in_ops[0].name if len(in_ops) == 1 else "inputs"
        head = f"block of {len(e.inputs)} {name}" + (f"; {'; '.join(e.context)}" if e.context else "")
        el = {_index(n): s for n, s in zip(in_names, shown_in)} if len(in_ops) == 1 else {}
    rows = []
    for col, x, xv, g, gv in zip(e.columns, e.expected, e.expected_value, e.got, e.got_value):
        i = _index(col)
        rows.append((col, el.get(i, "") if i is not None else "", show_pair(x, xv), show_pair(g, gv)))
    return head, rows


def example_text(spec_id: str, e: Example, limit: int = SHOWN_ELEMENTS) -> str:
    """One counterexample as short lines: the input, then each offending column (the first ``limit``, the rest
    counted) with expected and got side by side."""
    head, rows = example_rows(spec_id, e)
    lines = [f"input {head}"]
    for col, xin, x, g in rows[:limit]:
        lines.append(f"    {col}" + (f" (x = {xin})" if xin else "") + f": expected {x}, got {g}")
    if len(rows) > limit:
        lines.append(f"    ... {len(rows) - limit} more of the {len(rows)} differing columns elided")
    return "\n".join(lines)


def failure_summary(c: Certificate) -> str:
    """The smallest counterexample of every stage and class, then the class totals (each input once): the first
    lines a failing test or command shows."""
    lines = []
    for stage, e in _examples(c):
        lines.append(f"smallest {e.cls} [{stage}]: " + example_text(c.spec, e).replace("\n", "\n  "))
    tot = c.totals()
    lines.append("mismatching inputs by class (each input once): " + (", ".join(f"{k} {tot[k]}" for k in CLASSES
                                                                           if tot[k]) or "none"))
    return "\n".join(lines)


def class_table(c: Certificate) -> list[tuple[str, int, list[int]]]:
    """(class, distinct inputs over all stages, per-stage counts) for every class."""
    tot = c.totals()
    return [(k, tot[k], [s.mismatches.get(k, 0) for s in c.stages]) for k in CLASSES]


def _cell(t: str) -> str:
    return t.replace("|", "\\|")


def markdown(c: Certificate) -> str:
    """The certificate as Markdown: verdict, stages, classes (inputs counted once, and per stage), histogram,
    counterexamples first-class per stage with only their offending elements."""
    lines = [f"# Certificate: `{c.target}` against `{c.spec}`", "",
             f"**Verdict: {c.verdict.upper()}**" + (" (NaN payload differences accepted)" if c.nan_payload_ok else ""),
             "", f"- kernel: {c.kernel_version}", f"- started: {c.started}, {c.seconds:.1f} s",
             "- environment: " + ", ".join(f"{k} {v}" for k, v in sorted(c.environment.items()))]
    if c.exhaustive_skipped:
        lines.append(f"- exhaustive stage: {SKIPPED} {c.exhaustive_skipped}")
    lines.append("")
    ex = _examples(c)
    if ex:
        lines += ["## Smallest counterexamples (per stage and class)", ""]
        for stage, e in ex:
            lines += [f"- **{e.cls}** [{stage}]:", "", "  ```", *("  " + t for t in example_text(c.spec, e)
                                                                    .splitlines()), "  ```", ""]
    lines += ["## Stages", "", "| stage | source | vectors | outside domain | mismatches | seconds |",
              "|---|---|---:|---:|---:|---:|"]
    for s in c.stages:
        lines.append(f"| {s.name} | {_cell(s.source)}{' sha256 ' + s.sha256[:16] if s.sha256 else ''} | "
                     f"{s.vectors} | {s.outside_domain} | {sum(s.mismatches.values())} | {s.seconds:.1f} |")
    names = [s.name for s in c.stages]
    lines += ["", "## Mismatches by class", "", "Inputs counted once over all stages; per-stage counts beside.", "",
              "| class | inputs | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    lines += [f"| {k} | {t} | " + " | ".join(str(v) for v in per) + " |" for k, t, per in class_table(c)]
    hist = _hist(c)
    lines += ["", "## Error histogram (distance in representable values; special = NaN/inf involved)", "",
              "| distance | count |", "|---|---:|"]
    lines += [f"| {BUCKET_LABELS[k]} | {hist[k]} |" for k in BUCKETS]
    bias = _input_bias(c.spec) or 0
    for s in c.stages:
        if s.input_map:
            top = sorted(_by_exponent(s).items(), key=lambda kv: (-kv[1], kv[0]))
            lines += ["", f"## Mismatching inputs by binade [{s.name}]", "",
                      "sign and unbiased exponent: distinct inputs, most first" +
                      (f" (the first 16 of {len(top)} binades)" if len(top) > 16 else "") + ": " +
                      ", ".join(f"{'-' if sg else '+'}2^{e - bias}: {n}" for (sg, e), n in top[:16])]
        if s.block_profile:
            a, p = s.block_profile.get("amax_exponent", []), s.block_profile.get("position", [])
            lines += ["", f"## Mismatching blocks [{s.name}]", "", "most first, at most 12 (all in the JSON):", "",
                      "- blocks by floor(log2 amax): " + _top((("all zero" if k is None else k), v) for k, v in a),
                      "- elements by position in the block: " + _top(p)]
    return "\n".join(lines) + "\n"


def _top(pairs, n: int = 12) -> str:
    pairs = sorted(pairs, key=lambda kv: -kv[1])
    return ", ".join(f"{k}: {v}" for k, v in pairs[:n]) + (f" (and {len(pairs) - n} more)" if len(pairs) > n else "")


def _by_exponent(s: Stage) -> dict[tuple[int, int], int]:
    out: dict[tuple[int, int], int] = {}
    for sg, e, _, n in s.input_map:
        out[(sg, e)] = out.get((sg, e), 0) + n
    return out


def _hist(c: Certificate) -> dict[str, int]:
    h = dict.fromkeys(BUCKETS, 0)
    for s in c.stages:
        for k, v in s.histogram.items():
            h[k] += v
    return h


def _examples(c: Certificate):
    return [(s.name, s.examples[k]) for s in c.stages for k in CLASSES if k in s.examples]


def svg_histogram(hist: dict[str, int], width: int = 480, height: int = 180) -> str:
    """Bar chart of the error histogram as an inline SVG element (log-free, counts labelled)."""
    n = len(hist)
    mx = max(hist.values()) or 1
    bw = (width - 40) / n
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
             f'aria-label="error histogram">', f'<line x1="20" y1="{height - 30}" x2="{width - 10}" '
             f'y2="{height - 30}" stroke="#333"/>']
    for i, (k, v) in enumerate(hist.items()):
        h = (height - 60) * v / mx
        x = 25 + i * bw
        y = height - 30 - h
        parts.append(f'<rect x="{x:.1f}" y="{y:.1f}" width="{bw * 0.8:.1f}" height="{h:.1f}" fill="#c0392b"/>')
        parts.append(f'<text x="{x + bw * 0.4:.1f}" y="{height - 15}" font-size="11" text-anchor="middle">'
                     f'{html.escape(k)}</text>')
        parts.append(f'<text x="{x + bw * 0.4:.1f}" y="{y - 3:.1f}" font-size="10" text-anchor="middle">{v}</text>')
    parts.append("</svg>")
    return "".join(parts)


# ------------------------------------------------------------------ pictures (matplotlib, optional)
def have_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _svg(fig) -> str:
    """A matplotlib figure as an inline <svg> element: no XML prolog, no metadata, reproducible ids."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None},
                bbox_inches="tight")
    plt.close(fig)
    t = buf.getvalue()
    t = t[t.index("<svg"):]
    return re.sub(r"<metadata>.*?</metadata>", "", t, flags=re.S)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    matplotlib.rcParams["svg.hashsalt"] = "refarith"
    matplotlib.rcParams["svg.fonttype"] = "none"
    return plt


def input_map_svgs(s: Stage, bias: int | None = None) -> list[str]:
    """Pictures of a stage's input map: mismatches over binade x mantissa prefix (one panel per sign), and
    mismatches by exponent (stacked by sign).  ``bias``: the input format's exponent bias (axis labels)."""
    import numpy as np

    plt = _plt()
    exps = sorted({e for _, e, _, _ in s.input_map})
    lo, hi = exps[0], exps[-1]
    pre = max(p for _, _, p, _ in s.input_map) + 1
    npre = 1 << max(1, int(pre - 1).bit_length())
    grid = np.zeros((2, npre, hi - lo + 1))
    for sg, e, p, n in s.input_map:
        grid[sg, p, e - lo] += n
    b = bias or 0
    ext = [lo - b - 0.5, hi - b + 0.5, -0.5, npre - 0.5]
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 3.0), sharey=True)
    vmax = grid.max() or 1
    for sg, ax in enumerate(axes):
        im = ax.imshow(np.where(grid[sg] > 0, grid[sg], np.nan), origin="lower", aspect="auto", extent=ext,
                       cmap="Reds", vmin=0, vmax=vmax, interpolation="nearest")
        ax.set_title(f"{'negative' if sg else 'positive'} inputs", fontsize=10)
        ax.set_xlabel("binade (unbiased exponent)" if bias is not None else "biased exponent")
    axes[0].set_ylabel("top mantissa bits")
    fig.colorbar(im, ax=list(axes), label="mismatches")
    out = [_svg(fig)]
    fig, ax = plt.subplots(figsize=(9.5, 2.6))
    xs = np.arange(lo, hi + 1) - b
    pos, neg = grid[0].sum(axis=0), grid[1].sum(axis=0)
    ax.bar(xs, pos, color="#c0392b", label="positive")
    ax.bar(xs, neg, bottom=pos, color="#2e86c1", label="negative")
    ax.set_xlabel("input exponent" + (" (unbiased)" if bias is not None else ""))
    ax.set_ylabel("mismatches")
    ax.legend(fontsize=8)
    out.append(_svg(fig))
    return out


def block_svgs(s: Stage) -> list[str]:
    """Pictures of a stage's block profile: mismatching blocks by floor(log2 amax), elements by position."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(9.5, 2.8))
    a = s.block_profile.get("amax_exponent", [])
    none = sum(n for k, n in a if k is None)
    axes[0].bar([k for k, _ in a if k is not None], [n for k, n in a if k is not None], color="#c0392b", width=1.0)
    axes[0].set_xlabel("floor(log2 amax) of the block" + (f" ({none} blocks all zero/special)" if none else ""))
    axes[0].set_ylabel("mismatching blocks")
    p = s.block_profile.get("position", [])
    axes[1].bar([k for k, _ in p], [n for _, n in p], color="#2e86c1", width=0.9)
    axes[1].set_xlabel("element position in the block")
    axes[1].set_ylabel("mismatching elements")
    fig.tight_layout()
    return [_svg(fig)]


def _input_bias(spec_id: str) -> int | None:
    try:
        spec = parse_spec(spec_id)
        fin = get_driver(spec).input_formats(spec)
        return getattr(fin[0], "bias", None) if len(fin) == 1 else None
    except Exception:  # noqa: BLE001 - axis labels only
        return None


def pictures(c: Certificate) -> str:
    """HTML of every picture of the certificate (an explanatory note when matplotlib is absent)."""
    e = html.escape
    wanted = [s for s in c.stages if s.input_map or s.block_profile]
    if not wanted:
        return ""
    if not have_matplotlib():
        return ("<p class=note>The pictures of where the mismatches lie need matplotlib "
                "(<code>pip install 'refarith[report]'</code>); the tables above hold the same counts.</p>")
    out = []
    bias = _input_bias(c.spec)
    for s in wanted:
        if s.input_map:
            out.append(f"<h3>Where the mismatches are [{e(s.name)}]</h3><p>each distinct mismatching input, by "
                       "sign, binade and the top bits of its mantissa</p>")
            out += [f"<div class=fig>{x}</div>" for x in input_map_svgs(s, bias)]
        if s.block_profile:
            out.append(f"<h3>Mismatching blocks [{e(s.name)}]</h3>")
            out += [f"<div class=fig>{x}</div>" for x in block_svgs(s)]
    return "<h2>Pictures</h2>" + "".join(out)


# ------------------------------------------------------------------ the page
def html_page(c: Certificate) -> str:
    """A self-contained HTML page (inline CSS and SVG, no external resource) that fits a 1280-px window."""
    e = html.escape
    color = "#1e8449" if c.passed else "#c0392b"
    rows = "".join(f"<tr><td>{e(s.name)}</td><td>{e(s.source)}</td><td>{s.vectors}</td><td>{s.outside_domain}</td>"
                   f"<td>{sum(s.mismatches.values())}</td><td>{s.seconds:.1f}</td></tr>" for s in c.stages)
    names = "".join(f"<th>{e(s.name)}</th>" for s in c.stages)
    cls = "".join(f"<tr><td>{k}</td><td>{t}</td>" + "".join(f"<td>{v}</td>" for v in per) + "</tr>"
                  for k, t, per in class_table(c))
    ex = []
    for st, x in _examples(c):
        head, rows_ = example_rows(c.spec, x)
        shown = rows_[:SHOWN_ELEMENTS]
        more = len(rows_) - len(shown)
        span = len(shown) + (1 if more else 0)
        for i, (col, xin, want, got) in enumerate(shown):
            lead = (f"<td rowspan={span}>{e(st)}</td><td rowspan={span}>{e(x.cls)}</td>"
                    f"<td rowspan={span}>{e(head)}</td>") if i == 0 else ""
            ex.append(f"<tr>{lead}<td>{e(col)}</td><td>{e(xin)}</td><td>{e(want)}</td><td>{e(got)}</td></tr>")
        if more:
            ex.append(f"<tr><td colspan=4><i>{more} more of the {len(rows_)} differing columns elided</i></td></tr>")
    env = ", ".join(f"{k} {v}" for k, v in sorted(c.environment.items()))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>refarith certificate: {e(c.target)} / {e(c.spec)}</title>
<style>body{{font-family:sans-serif;max-width:72em;margin:1.5em auto;padding:0 1em}}
table{{border-collapse:collapse;max-width:100%}}td,th{{border:1px solid #aaa;padding:2px 6px;text-align:left;
vertical-align:top;overflow-wrap:anywhere}}th,td:first-child{{white-space:nowrap}}
#examples td:nth-child(n+3){{font-family:monospace}}
.fig svg{{max-width:100%;height:auto}}.note{{color:#7d6608}}</style></head><body>
<h1>{e(c.target)} against <code>{e(c.spec)}</code></h1>
<p style="font-size:1.4em;color:{color}"><b>{c.verdict.upper()}</b>{' (NaN payload differences accepted)'
                                                                     if c.nan_payload_ok else ''}</p>
<p>kernel: {e(c.kernel_version)}; started {e(c.started)}; {c.seconds:.1f} s<br>environment: {e(env)}</p>
{f'<p class=note id=exhaustive-skipped>exhaustive stage: {SKIPPED} {e(c.exhaustive_skipped)}</p>'
 if c.exhaustive_skipped else ''}
<h2>Smallest counterexamples</h2>{'<table id=examples><tr><th>stage</th><th>class</th><th>input</th><th>column</th>'
 '<th>input element</th><th>expected</th><th>got</th></tr>' + ''.join(ex) + '</table>' if ex else '<p>none</p>'}
<h2>Stages</h2><table><tr><th>stage</th><th>source</th><th>vectors</th><th>outside domain</th><th>mismatches</th>
<th>seconds</th></tr>{rows}</table>
<h2>Mismatches by class</h2><p>inputs: each input counted once over all stages; then the count of each stage</p>
<table><tr><th>class</th><th>inputs</th>{names}</tr>{cls}</table>
<h2>Error histogram</h2><p>distance in representable values between result and reference; special = NaN/inf</p>
{svg_histogram({BUCKET_LABELS[k]: v for k, v in _hist(c).items()})}
{pictures(c)}
</body></html>
"""


def report_stem(c: Certificate) -> str:
    t = c.target.replace(":", "-").replace("/", "_").replace("+", "_")
    return f"{t}__{parse_spec(c.spec).filename()}"


def write_reports(c: Certificate, directory: str | Path) -> list[Path]:
    """Write <stem>.json, <stem>.md and <stem>.html into ``directory``, all or nothing (each staged in a temporary
    first; OutputError, and no new file, when the directory cannot be made or written, e.g. read-only or full);
    returns the paths."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        from refarith.errors import OutputError

        raise OutputError(f"report directory {d} is not a directory")
    stem = report_stem(c)
    files = [(d / f"{stem}.{ext}", text.encode()) for ext, text in
             (("json", c.to_json()), ("md", markdown(c)), ("html", html_page(c)))]
    write_all_atomic(files)
    return [p for p, _ in files]
