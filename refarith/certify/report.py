"""Human reports of a certificate: Markdown, and a self-contained HTML page with an inline SVG histogram."""

from __future__ import annotations

import html
from pathlib import Path

from refarith.certify.runner import BUCKETS, Certificate
from refarith.golden.drivers import CLASSES
from refarith.golden.fileformat import write_all_atomic
from refarith.spec import parse_spec


def markdown(c: Certificate) -> str:
    tot = c.totals()
    lines = [f"# Certificate: `{c.target}` against `{c.spec}`", "",
             f"**Verdict: {c.verdict.upper()}**" + (" (NaN payload differences accepted)" if c.nan_payload_ok else ""),
             "", f"- kernel: {c.kernel_version}", f"- started: {c.started}, {c.seconds:.1f} s",
             "- environment: " + ", ".join(f"{k} {v}" for k, v in sorted(c.environment.items())), "",
             "## Stages", "", "| stage | source | vectors | outside domain | mismatches | seconds |",
             "|---|---|---:|---:|---:|---:|"]
    for s in c.stages:
        lines.append(f"| {s.name} | {s.source}{' sha256 ' + s.sha256[:16] if s.sha256 else ''} | {s.vectors} | "
                     f"{s.outside_domain} | {sum(s.mismatches.values())} | {s.seconds:.1f} |")
    lines += ["", "## Mismatches by class", "", "| class | count |", "|---|---:|"]
    lines += [f"| {k} | {tot[k]} |" for k in CLASSES]
    hist = _hist(c)
    lines += ["", "## Error histogram (distance in representable values; special = NaN/inf involved)", "",
              "| distance | count |", "|---|---:|"]
    lines += [f"| {k} | {hist[k]} |" for k in BUCKETS]
    ex = _examples(c)
    if ex:
        lines += ["", "## Minimized counterexamples (smallest input magnitude per class)", "",
                  "| stage | class | input | input value | column | expected | expected value | got | got value |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for stage, e in ex:
            lines.append(f"| {stage} | {e.cls} | {' '.join(e.inputs)} | {', '.join(e.input_values)} | "
                         f"{', '.join(e.columns)} | {' '.join(e.expected)} | {', '.join(e.expected_value)} | "
                         f"{' '.join(e.got)} | {', '.join(e.got_value)} |")
    return "\n".join(lines) + "\n"


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


def html_page(c: Certificate) -> str:
    e = html.escape
    tot = c.totals()
    color = "#1e8449" if c.passed else "#c0392b"
    rows = "".join(f"<tr><td>{e(s.name)}</td><td>{e(s.source)}</td><td>{s.vectors}</td><td>{s.outside_domain}</td>"
                   f"<td>{sum(s.mismatches.values())}</td><td>{s.seconds:.1f}</td></tr>" for s in c.stages)
    cls = "".join(f"<tr><td>{k}</td><td>{tot[k]}</td></tr>" for k in CLASSES)
    ex = "".join(f"<tr><td>{e(st)}</td><td>{e(x.cls)}</td><td>{e(' '.join(x.inputs))}</td>"
                 f"<td>{e(', '.join(x.input_values))}</td><td>{e(', '.join(x.columns))}</td>"
                 f"<td>{e(_pairs(x.expected, x.expected_value))}</td>"
                 f"<td>{e(_pairs(x.got, x.got_value))}</td></tr>" for st, x in _examples(c))
    env = ", ".join(f"{k} {v}" for k, v in sorted(c.environment.items()))
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>refarith certificate: {e(c.target)} / {e(c.spec)}</title>
<style>body{{font-family:sans-serif;max-width:60em;margin:2em auto}}table{{border-collapse:collapse}}
td,th{{border:1px solid #aaa;padding:2px 6px;text-align:left}}</style></head><body>
<h1>{e(c.target)} against <code>{e(c.spec)}</code></h1>
<p style="font-size:1.4em;color:{color}"><b>{c.verdict.upper()}</b>{' (NaN payload differences accepted)'
                                                                     if c.nan_payload_ok else ''}</p>
<p>kernel: {e(c.kernel_version)}; started {e(c.started)}; {c.seconds:.1f} s<br>environment: {e(env)}</p>
<h2>Stages</h2><table><tr><th>stage</th><th>source</th><th>vectors</th><th>outside domain</th><th>mismatches</th>
<th>seconds</th></tr>{rows}</table>
<h2>Mismatches by class</h2><table><tr><th>class</th><th>count</th></tr>{cls}</table>
<h2>Error histogram</h2><p>distance in representable values between result and reference; special = NaN/inf</p>
{svg_histogram(_hist(c))}
<h2>Minimized counterexamples</h2><table><tr><th>stage</th><th>class</th><th>input</th><th>input value</th>
<th>column</th><th>expected</th><th>got</th></tr>{ex}</table>
</body></html>
"""


def _pairs(codes: list[str], values: list[str]) -> str:
    return ", ".join(f"{c} = {v}" for c, v in zip(codes, values))


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
