"""The registry-wide binary32 cast campaign: every setting of every binary32 cast kernel theorem, a kernel against
the exact model on all 2^32 inputs, one ledger per setting under one root, one merged certificate.

The settings are those the kernel theorems ``cast.binary32->DST.<mode>`` and ``cast.binary32->DST.policies``
prove (:func:`refarith.smt.theorems.casts.kernel_theorems`): every deterministic rounding mode with every overflow
mode of the target, and the nan/negative policies of targets without NaN or without a sign.  Each setting is the
campaign ``cast(binary32->DST,...)`` of :mod:`refarith.certify.shards` (kind ``unary32``, the sticky-key table, for
targets of <= 8 bits and <= 6 mantissa bits; ``unary32c``, the per-binade class table, for the wider ones), its
ledger the directory ``<root>/<slug of the spec>``.  The root's ``campaign.json`` binds the campaign (kernel,
shard size, the list of settings), written once; a later run with another kernel or shard size, or a root whose
settings list differs from the registry's, is refused.  ``--targets GLOB`` runs a subset of the settings now
(the others stay "not run"); all shards of all selected settings go to one engine at once
(:func:`refarith.certify.engine.run_campaigns`).

The merged certificate (JSON, Markdown, HTML) is rebuilt from the ledgers alone (every shard file verified): one
entry per setting (verdict, inputs compared, outside the spec's domain, mismatches by class, CPU seconds,
retries, the ledger's digest, the smallest counterexample of each class) and the totals; its verdict is ``pass``
only when every setting is complete and passes, ``fail`` when any has a mismatch, else ``incomplete``.
"""

from __future__ import annotations

import fnmatch
import hashlib
import html
import json
import re
from dataclasses import asdict
from pathlib import Path

from refarith.certify.shards import Ledger, LedgerError, certificate, make_campaign
from refarith.errors import BadValueError
from refarith.golden.fileformat import write_atomic

CAMPAIGN = "cast-theorems(binary32)"
ROOT_FILE = "campaign.json"
ROOT_VERSION = 1
DEFAULT_SHARD_BITS = 32
"""One shard per setting by default: a worker then builds a setting's reference table once (2-3 s for the
sticky-key table), and a setting takes about 6-9 CPU s (key targets) or 150 CPU s (bfloat16, binary16, P3109
p = 8) here."""


def theorem_settings(target_glob: str = "*") -> list[tuple[str, str]]:
    """(theorem name, canonical spec id) of every setting of the binary32 cast kernel theorems whose target
    matches ``target_glob`` (comma-separated globs), in the registry's order."""
    from refarith.formats import get_format
    from refarith.smt.theorems.casts import kernel_theorems, targets
    from refarith.spec import parse_spec

    out = []
    for dst in targets("binary32"):
        if not _selected(dst, target_glob):
            continue
        f = get_format(dst)
        for name, settings in kernel_theorems("binary32", dst):
            for rnd, ovf, nan, neg in settings:
                params = [f"rounding={rnd}", f"overflow={ovf}"]
                if not f.has_nan:
                    params.append(f"nan={nan}")
                if not f.signed:
                    params.append(f"negative={neg}")
                spec = parse_spec(f"cast(binary32->{dst},{','.join(params)})")
                p = spec.param
                got = (p["rounding"], p["overflow"], p.get("nan", "error"), p.get("negative", "error"))
                if got != (rnd, ovf, nan, neg):  # the spec must say what the theorem proves, nothing defaulted away
                    raise BadValueError(f"{name}: the spec {spec} does not carry the setting {rnd, ovf, nan, neg}")
                out.append((name, str(spec)))
    return out


def _selected(dst: str, globs: str) -> bool:
    """``dst`` matches one of the comma-separated globs."""
    return any(fnmatch.fnmatchcase(dst, g.strip()) for g in globs.split(","))


def slug(spec_id: str) -> str:
    """The ledger directory name of a setting: its spec id with every run of other characters as one '_'."""
    return re.sub(r"[^A-Za-z0-9.]+", "_", spec_id).strip("_")


def _root_doc(target: str, shard_bits: int, start: int = 0, stop: int = 1 << 32) -> dict:
    return {"campaign": CAMPAIGN, "version": ROOT_VERSION, "target": target, "shard_bits": shard_bits,
            "start": start, "stop": stop,
            "settings": [{"theorem": t, "spec": s, "ledger": slug(s)} for t, s in theorem_settings()]}


def open_root(root: str | Path, target: str | None = None, shard_bits: int | None = None,
              rng: tuple[int, int] | None = None) -> dict:
    """The root's campaign document: written on first use (``target``, ``shard_bits`` and ``rng`` given), else
    read and checked against the arguments and the registry.  LedgerError for a foreign or altered root."""
    root = Path(root)
    f = root / ROOT_FILE
    if f.exists():
        try:
            doc = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise LedgerError(f"{f}: not a campaign file ({type(e).__name__}: {e})") from None
        if not isinstance(doc, dict) or doc.get("campaign") != CAMPAIGN or doc.get("version") != ROOT_VERSION:
            raise LedgerError(f"{f}: not a {CAMPAIGN} campaign of version {ROOT_VERSION}")
        for key, want in (("target", target), ("shard_bits", shard_bits), ("start", rng and rng[0]),
                          ("stop", rng and rng[1])):
            if want is not None and doc.get(key) != want:
                raise LedgerError(f"{root}: a campaign of {key} {doc.get(key)!r}, not {want!r}; use another "
                                  "directory")
        fresh = _root_doc(doc["target"], doc["shard_bits"], doc.get("start", 0), doc.get("stop", 1 << 32))
        if doc.get("settings") != fresh["settings"]:
            raise LedgerError(f"{root}: its list of settings ({len(doc.get('settings') or [])}) is not the "
                              f"registry's ({len(fresh['settings'])}): a campaign of another refarith version")
        return doc
    if target is None or shard_bits is None or rng is None:
        raise LedgerError(f"{root}: no {ROOT_FILE}; not a {CAMPAIGN} campaign (run `refarith sweep cast-theorems` "
                          "first)")
    lo, hi = rng
    if not 0 <= lo < hi <= 1 << 32:
        raise BadValueError(f"--range {lo:#x}:{hi:#x} is not a non-empty range inside [0, 2^32)")
    doc = _root_doc(target, shard_bits, lo, hi)
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(f, (json.dumps(doc, indent=1) + "\n").encode())
    return doc


def is_root(path: str | Path) -> bool:
    return (Path(path) / ROOT_FILE).exists()


def run(root: str | Path, target: str = "refarith:numpy", target_glob: str = "*",
        shard_bits: int = DEFAULT_SHARD_BITS, engine: str = "auto", workers: int | None = None,
        scheduler: str | None = None, retries: int = 2, progress: bool | None = None, stream=None,
        stop_after: int | None = None, rng: tuple[int, int] = (0, 1 << 32)) -> dict:
    """Run (or resume) the settings whose target matches ``target_glob``, on the binary32 patterns ``rng``
    (default all; a slice is a campaign of its own); the merged certificate document."""
    from refarith.certify.engine import run_campaigns

    doc = open_root(root, target, shard_bits, rng)
    sel = [e for e in doc["settings"] if _selected(_target_of(e["spec"]), target_glob)]
    if not sel:
        raise BadValueError(f"--targets {target_glob!r} selects no setting of {CAMPAIGN}")
    items = []
    for e in sel:
        camp = make_campaign(e["spec"], target, shard_bits, rng[0], rng[1])
        d = Path(root) / e["ledger"]
        if (d / "ledger.json").exists():
            led = Ledger(d)
            led.read_header()
            n = len(led.shards())
            if n == len(camp.shards()):
                continue  # complete: verified again by merged(), never reopened (its binding may be older)
            if n == 0:  # a header without shards (a run stopped before it): nothing to keep, bind it afresh
                led.lock()
                try:
                    led.header_file.unlink()
                finally:
                    led.unlock()
        items.append((camp, d))
    if not items:
        return merged(root)
    run_campaigns(items, engine=engine, workers=workers, scheduler=scheduler, retries=retries,
                  progress=progress, stream=stream, stop_after=stop_after,
                  label=f"{CAMPAIGN}: {len(items)} settings [{target}]")
    return merged(root)


def merged(root: str | Path) -> dict:
    """The merged certificate of the campaign at ``root``, from its ledgers alone (every shard file verified;
    LedgerError names the first that does not)."""
    root = Path(root)
    doc = open_root(root)
    entries = []
    totals = {"vectors": 0, "outside_domain": 0, "cpu_seconds": 0.0, "retries": 0}
    classes: dict[str, int] = {}
    env = None
    h = hashlib.sha256()
    for e in doc["settings"]:
        d = root / e["ledger"]
        row = {"theorem": e["theorem"], "spec": e["spec"], "ledger": e["ledger"]}
        if not (d / "ledger.json").exists():
            row["verdict"] = "not run"
            entries.append(row)
            continue
        led = Ledger(d)
        hdr = led.read_header()
        hc = hdr["campaign"]
        if (hc["spec"], hc["target"], hc["shard_bits"], hc["start"], hc["stop"]) != \
                (e["spec"], doc["target"], doc["shard_bits"], doc["start"], doc["stop"]):
            raise LedgerError(f"{d}: a ledger of {hdr['campaign']['spec']} [{hdr['campaign']['target']}], not of "
                              f"the campaign's {e['spec']} [{doc['target']}]")
        done = led.shards()
        ncamp = len(make_campaign(e["spec"], doc["target"], doc["shard_bits"], doc["start"], doc["stop"]).shards())
        if len(done) < ncamp:
            row.update(verdict="incomplete", shards_done=len(done), shards=ncamp)
            entries.append(row)
            continue
        c = certificate(led)
        st = c.stages[0]
        env = env or c.environment
        mism = {k: v for k, v in st.mismatches.items() if v}
        cpu = round(sum(float(s.get("cpu_seconds", 0.0)) for s in done.values()), 3)
        retries = int(c.environment.get("sweep_retries", 0))
        row.update(verdict=c.verdict, vectors=st.vectors, outside_domain=st.outside_domain, mismatches=mism,
                   cpu_seconds=cpu, retries=retries, ledger_digest=led.digest(),
                   counterexamples={k: asdict(v) for k, v in st.examples.items()})
        h.update(f"{e['spec']}\0{led.digest()}\0".encode())
        totals["vectors"] += st.vectors
        totals["outside_domain"] += st.outside_domain
        totals["cpu_seconds"] += cpu
        totals["retries"] += retries
        for k, v in mism.items():
            classes[k] = classes.get(k, 0) + v
        entries.append(row)
    done = [r for r in entries if r["verdict"] in ("pass", "fail")]
    failed = [r for r in done if r["verdict"] == "fail"]
    verdict = "fail" if failed else ("pass" if len(done) == len(entries) else "incomplete")
    totals["cpu_seconds"] = round(totals["cpu_seconds"], 1)
    return {"campaign": CAMPAIGN, "target": doc["target"], "shard_bits": doc["shard_bits"], "verdict": verdict,
            "settings": len(entries), "complete": len(done), "failed": len(failed), "start": doc["start"],
            "stop": doc["stop"], "inputs_per_setting": doc["stop"] - doc["start"],
            **totals, "mismatches": classes, "digest": h.hexdigest(),
            "environment": env or {}, "entries": entries}


def _target_of(spec: str) -> str:
    return spec.split("->", 1)[1].split(",", 1)[0].rstrip(")")


def _markdown(m: dict) -> str:
    lines = [f"# {m['campaign']} against `{m['target']}`: {m['verdict'].upper()}", "",
             f"{m['complete']} of {m['settings']} settings complete, {m['failed']} failed; "
             f"{m['vectors']} inputs compared, {m['outside_domain']} outside the specs' domains, "
             f"mismatches {m['mismatches'] or 'none'}; {m['cpu_seconds']} CPU s in shards, {m['retries']} retries; "
             f"shards of 2^{m['shard_bits']}; binary32 patterns "
             f"{'all 2^32' if (m['start'], m['stop']) == (0, 1 << 32) else hex(m['start']) + '..' + hex(m['stop'] - 1)}"
             f"; digest of the ledgers {m['digest'][:16]}.", "",
             "| target | settings | complete | pass | inputs compared | outside domain | mismatches | CPU s |",
             "|---|---:|---:|---:|---:|---:|---|---:|"]
    by: dict[str, list[dict]] = {}
    for r in m["entries"]:
        by.setdefault(_target_of(r["spec"]), []).append(r)
    for t, rows in by.items():
        ok = [r for r in rows if r["verdict"] in ("pass", "fail")]
        mism: dict[str, int] = {}
        for r in ok:
            for k, v in r.get("mismatches", {}).items():
                mism[k] = mism.get(k, 0) + v
        lines.append(f"| {t} | {len(rows)} | {len(ok)} | {sum(r['verdict'] == 'pass' for r in ok)} | "
                     f"{sum(r['vectors'] for r in ok)} | {sum(r['outside_domain'] for r in ok)} | "
                     f"{', '.join(f'{k} {v}' for k, v in mism.items()) or '-'} | "
                     f"{round(sum(r['cpu_seconds'] for r in ok), 1)} |")
    lines += ["", "| theorem | spec | verdict | inputs compared | outside domain | mismatches | CPU s | retries |",
              "|---|---|---|---:|---:|---|---:|---:|"]
    for r in m["entries"]:
        if r["verdict"] in ("pass", "fail"):
            lines.append(f"| {r['theorem']} | `{r['spec']}` | {r['verdict']} | {r['vectors']} | "
                         f"{r['outside_domain']} | {', '.join(f'{k} {v}' for k, v in r['mismatches'].items()) or '-'}"
                         f" | {r['cpu_seconds']} | {r['retries']} |")
        else:
            lines.append(f"| {r['theorem']} | `{r['spec']}` | {r['verdict']} | - | - | - | - | - |")
    return "\n".join(lines) + "\n"


def _html(m: dict) -> str:
    esc = html.escape
    md = _markdown(m).splitlines()
    title = md[0].lstrip("# ")
    out = ["<!DOCTYPE html>", "<html><head><meta charset=\"utf-8\">", f"<title>{esc(title)}</title>",
           "<style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #aaa;"
           "padding:2px 6px}td.fail{background:#f99}td.pass{background:#9f9}</style></head><body>",
           f"<h1>{esc(title)}</h1>", f"<p>{esc(md[2])}</p>"]
    table: list[str] = []
    for line in md[4:]:
        if not line.startswith("|"):
            if table:
                out.append("<table>" + "".join(table) + "</table>")
                table = []
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if set(line) <= set("|-: "):
            continue
        tag = "th" if not table else "td"
        table.append("<tr>" + "".join(
            f"<{tag}{' class=' + chr(34) + c + chr(34) if c in ('pass', 'fail') else ''}>{esc(c.strip('`'))}</{tag}>"
            for c in cells) + "</tr>")
    if table:
        out.append("<table>" + "".join(table) + "</table>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write_report(m: dict, out_dir: str | Path) -> list[Path]:
    """JSON, Markdown and HTML of the merged certificate in ``out_dir`` (written atomically); the paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stem = f"{slug(m['target'])}__{slug(CAMPAIGN)}"
    paths = [out / f"{stem}.json", out / f"{stem}.md", out / f"{stem}.html"]
    for p, text in zip(paths, (json.dumps(m, indent=1, sort_keys=True) + "\n", _markdown(m), _html(m))):
        write_atomic(p, text.encode())
    return paths


__all__ = ["CAMPAIGN", "DEFAULT_SHARD_BITS", "ROOT_FILE", "is_root", "merged", "open_root", "run", "slug",
           "theorem_settings", "write_report"]
