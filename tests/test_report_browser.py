"""The HTML certificate report in a real headless browser: it renders without console errors, loads nothing from
outside, its widest element fits a 1280-px window, and a screenshot is taken.  Skipped, with the reason, where
playwright or a Chromium binary is missing (pip install 'refarith[browser]'; Debian: chromium-headless-shell)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from refarith.certify.report import write_reports
from refarith.certify.runner import certify

CANDIDATES = ("chromium-headless-shell", "chromium", "chromium-browser", "google-chrome", "headless_shell")


def _browser() -> str | None:
    env = os.environ.get("REFARITH_CHROMIUM")
    if env and Path(env).exists():
        return env
    for name in CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


def _render(page_path: Path, shot: Path) -> dict:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed "
                                                                  "(pip install 'refarith[browser]')")
    exe = _browser()
    if exe is None:
        pytest.skip("no Chromium binary on PATH (Debian: apt-get install chromium-headless-shell; or set "
                    "REFARITH_CHROMIUM)")
    errors: list[str] = []
    requests: list[str] = []
    with sync_api.sync_playwright() as pw:
        try:
            b = pw.chromium.launch(executable_path=exe, args=["--no-sandbox"])
        except Exception as e:  # noqa: BLE001 - a browser that cannot start here is a skip with its reason
            pytest.skip(f"{exe} does not start: {str(e).splitlines()[0]}")
        page = b.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        dims = page.evaluate("""() => {
            const wide = [...document.querySelectorAll('table, svg, pre')].map(e => e.getBoundingClientRect().right);
            return {scroll: document.documentElement.scrollWidth, widest: Math.max(0, ...wide),
                    svgs: document.querySelectorAll('svg').length,
                    rows: document.querySelectorAll('#examples tr').length};
        }""")
        page.screenshot(path=str(shot), full_page=True)
        b.close()
    dims["errors"] = errors
    dims["outside"] = [u for u in requests if not u.startswith("file:")]
    return dims


def test_report_renders_in_a_browser_and_fits_1280px(tmp_path):
    pytest.importorskip("ml_dtypes")
    c = certify("ml_dtypes:float8_e4m3fn", "cast(binary32->ocp_e4m3,overflow=saturate)", fuzz=200)
    html = write_reports(c, tmp_path)[2]
    shot = tmp_path / "report.png"
    d = _render(html, shot)
    assert d["errors"] == [] and d["outside"] == []
    assert d["scroll"] <= 1280 and d["widest"] <= 1280, d
    assert d["rows"] >= 2
    assert shot.stat().st_size > 10_000
    from refarith.certify.report import have_matplotlib

    if have_matplotlib():
        assert d["svgs"] >= 3  # the histogram, the input map and the counts by exponent


@pytest.mark.slow  # certifies an MX kernel first: tens of seconds
def test_block_report_fits_1280px(tmp_path):
    import numpy as np

    from refarith.golden.drivers import get_driver
    from refarith.spec import parse_spec

    spec = parse_spec("mx_quantize(ocp_e4m3,block=32,scale=floor)")
    d = get_driver(spec)

    def broken(x):
        s, el = d.fast(spec, (np.asarray(x, dtype=np.uint64),), "numpy")
        el = np.array(el, dtype=np.uint8)
        rows = (np.asarray(x)[:, 0] % 16) == 0  # about one block in 16
        el[rows, 3:9] ^= 1
        return s, el

    broken.refarith_inputs = "codes"
    html = write_reports(certify(broken, spec), tmp_path)[2]
    r = _render(html, tmp_path / "block.png")
    assert r["errors"] == [] and r["scroll"] <= 1280 and r["widest"] <= 1280, r
