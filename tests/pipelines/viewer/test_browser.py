"""The viewer in a real headless Chromium: filters, paging, masks, hover, review, escaping.

Pixels are checked against the masks themselves: toggling a region must change the screenshot
where that mask is (and almost nowhere else), which also checks the page's RLE decoder
(column-major runs) against pycocotools.
"""

from __future__ import annotations

import functools
import http.server
import io
import json
import re
import threading
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pytest
from PIL import Image, ImageFilter
from viewer_data import HOSTILE_ID, HOSTILE_TEXT, read_js, site_samples

from fifa.core.marks import strip as to_plain
from fifa.core.rle import decode
from fifa.pipelines.review import load_review
from fifa.pipelines.viewer import ViewerConfig, build_site

CFG = ViewerConfig(page_size=4, progress=False)


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def ann_site(ann_run, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("ann_site")
    build_site(ann_run, site, CFG)
    return site


@pytest.fixture(scope="module")
def build_site_dir(build_dir, tmp_path_factory) -> Path:
    site = tmp_path_factory.mktemp("build_site")
    build_site(build_dir, site, CFG)
    return site


@pytest.fixture()
def page(browser):
    ctx = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    ctx.add_init_script(
        "window.__csp = []; document.addEventListener('securitypolicyviolation', "
        "(e) => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
    )
    pg = ctx.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.errors = errors
    yield pg
    ctx.close()
    assert not errors, errors


def open_site(page, site: Path, *, view: int = 0, sample: str | None = None, url: str | None = None):
    base = url or (site / "index.html").as_uri()
    page.goto(base + (f"#view={view}&sample={quote(sample, safe='')}" if sample is not None else ""))
    page.wait_for_selector("body[data-rendered]")
    page.wait_for_function("() => [...document.querySelectorAll('.stage img')].every((i) => i.complete)")
    return page


def shot(locator) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(locator.screenshot(animations="disabled"))).convert("RGB")).astype(int)


def changed(a: np.ndarray, b: np.ndarray, tol: int = 20) -> np.ndarray:
    return np.abs(a - b).max(axis=2) > tol


def mask_like(rle: dict, shape) -> np.ndarray:
    m = Image.fromarray(decode(rle).astype(np.uint8) * 255).resize((shape[1], shape[0]), Image.Resampling.NEAREST)
    return np.asarray(m) > 0


def grow(m: np.ndarray, px: int) -> np.ndarray:
    return np.asarray(Image.fromarray(m.astype(np.uint8) * 255).filter(ImageFilter.MaxFilter(2 * px + 1))) > 0


def shrink(m: np.ndarray, px: int) -> np.ndarray:
    return ~grow(~m, px)


def assert_lit_where(diff: np.ndarray, mask: np.ndarray) -> None:
    """The pixels that changed are the mask's (up to a 3 px edge), and most of the mask changed."""
    assert diff.sum() > 50, "nothing changed"
    inside = (diff & grow(mask, 3)).sum() / diff.sum()
    covered = (diff & shrink(mask, 3)).sum() / max(1, shrink(mask, 3).sum())
    assert inside > 0.97, f"{1 - inside:.1%} of the changed pixels lie outside the mask"
    assert covered > 0.8, f"only {covered:.1%} of the mask changed"


def list_ids(page) -> list[str]:
    return page.locator("#samples li.item").evaluate_all("(els) => els.map((e) => e.dataset.sid)")


def wait_list(page, ids: list[str]) -> None:
    page.wait_for_function(
        "(ids) => JSON.stringify([...document.querySelectorAll('#samples li.item')]"
        ".map((e) => e.dataset.sid)) === JSON.stringify(ids)",
        arg=ids,
        timeout=10_000,
    )


@pytest.fixture(scope="module")
def http_url(build_site_dir):
    """The build site served by a local static server (the page works from disk and over HTTP)."""
    handler = functools.partial(_QuietHandler, directory=str(build_site_dir))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/index.html"
    srv.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # noqa: D401 - keep test output clean
        pass


# ---------------------------------------------------------------------------- tests
def test_toggling_a_region_and_hovering_a_phrase_light_up_exactly_their_masks(page, ann_site):
    samples = site_samples(ann_site)
    ids = sorted(samples)
    sid = next(s for s in ids if len([t for t in samples[s]["text"] or [] if isinstance(t, list)]) >= 2)
    s = samples[sid]
    open_site(page, ann_site, view=ids.index(sid) // 4, sample=sid)
    assert page.text_content("#sample-id") == sid
    stage = page.locator(".stage")
    before = shot(stage)
    marks = [t for t in s["text"] if isinstance(t, list)]
    k = marks[0][1]
    page.check(f"#mask-{k}")
    on = shot(stage)
    assert_lit_where(changed(before, on), mask_like(s["masks"][k], before.shape))
    page.uncheck(f"#mask-{k}")
    page.mouse.move(5, 5)  # hovering a toggle row previews its mask: leave it
    assert changed(before, shot(stage)).mean() < 0.001
    # hover the second phrase: its mask lights up, and its toggle row is marked
    j = marks[1][1]
    page.hover(f'#explanation .phrase[data-mask="{j}"]')
    hot = shot(stage)
    assert_lit_where(changed(before, hot), mask_like(s["masks"][j], before.shape))
    assert "hot" in page.get_attribute(f'label.toggle[data-mask="{j}"]', "class")
    page.mouse.move(5, 5)
    assert changed(before, shot(stage)).mean() < 0.001
    # the pristine source swaps in under the same overlay
    page.check("#show-source")
    assert page.get_attribute(".stage img", "src") == s["source"]["src"] != s["img"]["src"]
    # status filter (every real-chain row is ok) keeps every sample
    page.select_option("#filter-status", label="ok")
    assert page.text_content("#count") == f"{len(ids)} of {len(ids)} samples"


def test_filters_paging_and_qa_rows(page, build_site_dir, http_url):
    index = read_js(build_site_dir / "data" / "index.js")
    ids, cols, facets = index["samples"]["id"], index["samples"], index["facets"]
    open_site(page, build_site_dir, url=http_url)
    assert list_ids(page) == ids[:4] and page.text_content("#page-info") == "page 1 / 3"
    assert "seed0" in page.text_content("#about").replace(" ", "")  # facts from build.json
    page.click("#next")
    wait_list(page, ids[4:8])
    assert page.text_content("#page-info") == "page 2 / 3" and page.text_content("#sample-id") == ids[4]
    page.keyboard.press("n")
    wait_list(page, ids[8:])

    def expect(facet, value):
        code = facets[facet].index(value)
        return [
            s
            for i, s in enumerate(ids)
            if (code in cols[facet][i] if facet in ("task", "split") else cols[facet][i] == code)
        ]

    page.select_option("#filter-task", label="loc")
    wait_list(page, expect("task", "loc"))
    assert page.text_content("#page-info") == "page 1 / 1"
    page.select_option("#filter-task", label="task: all")
    page.select_option("#filter-split", label="validation")
    wait_list(page, expect("split", "validation"))
    page.select_option("#filter-split", label="split: all")
    page.select_option("#filter-method", label="Face2Face")
    f2f = expect("method", "Face2Face")
    wait_list(page, f2f)
    assert 0 < len(f2f) < len(ids)
    page.select_option("#filter-method", label="method: all")
    page.select_option("#filter-warnings", label="with warnings")
    wait_list(page, ["s03"])
    assert page.text_content(".stage") == "image not available"
    assert "image file not found: missing/s03.png" in page.text_content("ul.warnings")
    # a bench sample: open its QA rows; hovering loc's mask chip lights the mask up
    page.select_option("#filter-warnings", label="warnings: all")
    page.select_option("#filter-split", label="test")
    page.click('#samples li.item[data-sid="s04"]')
    page.wait_for_function("() => document.querySelector('#sample-id').textContent === 's04'")
    page.wait_for_function("() => document.querySelector('.stage img').complete")
    loc = page.locator("details.qa", has_text="bench s04-loc")
    loc.locator("summary").click()
    assert "Where?" in loc.text_content()
    stage = page.locator(".stage")
    before = shot(stage)
    s4 = site_samples(build_site_dir)["s04"]
    m = next(q for q in s4["qa"] if q["task"] == "loc")["extra"][0]
    loc.locator(".chips .phrase").hover()
    assert_lit_where(changed(before, shot(stage)), mask_like(s4["masks"][m], before.shape))


def test_review_marks_download_reload_and_import(page, build_site_dir, tmp_path):
    open_site(page, build_site_dir)
    assert page.is_hidden(".review")
    page.check("#review-mode")
    page.fill("#reviewer", "ana <b>x</b>")
    page.press("#reviewer", "Tab")
    page.click('#samples li.item[data-sid="s00"]')
    item = page.locator('#samples li.item[data-sid="s00"]')
    before = shot(item)
    page.fill("#note", 'the <b>lip</b> mask misses "half"')
    page.click("#reject")
    page.wait_for_function("() => document.querySelector('#decision').textContent === 'rejected'")
    page.wait_for_selector('#samples li.item[data-sid="s00"] .review-rejected')
    assert changed(before, shot(item)).sum() > 30  # the list shows the decision
    page.keyboard.press("j")  # next sample, then accept it from the keyboard
    page.wait_for_function("() => document.querySelector('#sample-id').textContent === 's01'")
    page.keyboard.press("a")
    page.wait_for_selector('#samples li.item[data-sid="s01"] .review-accepted')
    assert page.text_content("#review-count") == "1 accepted, 1 rejected"
    page.select_option("#filter-review", label="rejected")
    wait_list(page, ["s00"])
    with page.expect_download() as dl:
        page.click("#download")
    path = tmp_path / "review.json"
    dl.value.save_as(path)
    obj = json.loads(path.read_text())
    assert obj["version"] == 1 and obj["reviewer"] == "ana <b>x</b>"
    got = load_review(path)
    assert {k: (d.decision, d.note) for k, d in got.items()} == {
        "s00": ("rejected", 'the <b>lip</b> mask misses "half"'),
        "s01": ("accepted", ""),
    }
    assert [d["sample_id"] for d in obj["decisions"]] == ["s00", "s01"]  # time order
    # reload: decisions, reviewer and review mode survive (localStorage)
    page.reload()
    page.wait_for_selector("body[data-rendered]")
    assert page.is_checked("#review-mode") and page.input_value("#reviewer") == "ana <b>x</b>"
    assert page.text_content("#review-count") == "1 accepted, 1 rejected"
    page.wait_for_selector('#samples li.item[data-sid="s00"] .review-rejected')
    page.click('#samples li.item[data-sid="s00"]')
    assert page.input_value("#note") == 'the <b>lip</b> mask misses "half"'
    # importing a file (e.g. a colleague's) merges it; later entries win
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            {
                "version": 1,
                "reviewer": "bo",
                "decisions": [
                    {"sample_id": "s02", "decision": "rejected", "note": "", "at": "2025-01-01T00:00:00Z"},
                    {"sample_id": "s00", "decision": "accepted", "note": "ok after all", "at": "2025-01-02T00:00:00Z"},
                ],
            }
        )
    )
    page.set_input_files("#import", str(other))
    page.wait_for_function("() => document.querySelector('#review-count').textContent === '2 decisions imported'")
    page.wait_for_function("() => document.querySelector('#review-count').textContent === '2 accepted, 1 rejected'")
    page.click("#clear")
    page.wait_for_function("() => document.querySelector('#review-count').textContent === '1 accepted, 1 rejected'")


def _assert_nothing_ran(page):
    assert page.evaluate("window.__pwned") is None
    assert "pwned" not in page.title()
    assert page.evaluate("window.__csp") == []  # nothing even tried (CSP would have blocked and reported it)
    assert page.evaluate("document.querySelectorAll('b, img[src=\"x\"], #detail script, #list script').length") == 0
    srcs = page.evaluate("[...document.scripts].map((s) => s.getAttribute('src'))")
    assert all(re.fullmatch(r"viewer\.js|data/(index|p\d{5})\.js", s or "") for s in srcs), srcs


@pytest.mark.parametrize("which", ["annotations", "build"])
def test_strings_from_data_show_literally_and_never_run(page, which, hostile_run, build_site_dir, tmp_path):
    if which == "annotations":
        site = tmp_path / "site"
        build_site(hostile_run, site, CFG)
        view = 0
    else:
        site = build_site_dir
        view = read_js(site / "data" / "index.js")["samples"]["id"].index(HOSTILE_ID) // 4
    open_site(page, site, view=view, sample=HOSTILE_ID)
    assert page.text_content("#sample-id") == HOSTILE_ID
    assert page.locator("#samples li.item .sid", has_text="evil").text_content() == HOSTILE_ID
    assert to_plain(HOSTILE_TEXT) in page.text_content("#explanation")
    assert page.text_content("#explanation .phrase") == "edge <img src=x onerror=window.__pwned=4>"
    assert "<b>Method</b>" in page.text_content("#detail .head")
    if which == "annotations":
        assert "<script>window.__pwned=5</script>" in page.text_content("dl.info")
    page.hover("#explanation .phrase")
    page.check("#review-mode")
    page.fill("#note", "<img src=x onerror=window.__pwned=6><script>window.__pwned=7</script>")
    page.click("#reject")
    page.wait_for_selector("#samples li.item .review-rejected")
    page.select_option("#filter-review", label="rejected")
    page.wait_for_function("() => document.querySelectorAll('#samples li.item').length === 1")
    page.reload()
    page.wait_for_selector("body[data-rendered]")
    assert page.input_value("#note").startswith("<img src=x")
    _assert_nothing_ran(page)


def test_reviewer_name_required_and_blind_review(page, build_site_dir, tmp_path):
    open_site(page, build_site_dir)
    page.evaluate("localStorage.clear()")
    page.reload()
    page.wait_for_selector("body[data-rendered]")
    page.check("#review-mode")
    page.click('#samples li.item[data-sid="s00"]')
    page.click("#accept")
    page.wait_for_selector('#samples li.item[data-sid="s00"] .review-accepted')
    downloads = []
    page.on("download", lambda d: downloads.append(d))
    page.click("#download")  # no reviewer name: nothing is downloaded, the name is asked for
    page.wait_for_function("() => document.querySelector('#review-count').textContent.includes('enter your name')")
    assert downloads == [] and page.evaluate("document.activeElement.id") == "reviewer"
    # blind: an undecided sample shows its image only, until the reviewer has noted what they see
    page.check("#blind")
    page.click('#samples li.item[data-sid="s01"]')
    page.wait_for_selector("#seen")
    assert page.is_disabled("#reveal")
    for hidden in ("#explanation", ".toggles", ".qa-list", ".review", "canvas.overlay"):
        assert page.locator(f"#detail {hidden}").count() == 0, hidden
    page.keyboard.press("a")  # no decision before the annotation is shown
    page.wait_for_timeout(300)
    assert page.locator('#samples li.item[data-sid="s01"] .review-accepted').count() == 0
    assert page.evaluate(
        "Object.keys(JSON.parse(localStorage.getItem(Object.keys(localStorage).find("
        "(k) => k.endsWith(':review')))).decisions)"
    ) == ["s00"]
    page.fill("#seen", "the <b>lips</b> look smoothed")
    page.click("#reveal")
    page.wait_for_selector("#detail .toggles")
    assert "the <b>lips</b> look smoothed" in page.text_content("#seen-note")
    page.click("#reject")
    page.wait_for_selector('#samples li.item[data-sid="s01"] .review-rejected')
    page.click('#samples li.item[data-sid="s00"]')  # decided before: shown in full in blind mode
    page.wait_for_selector("#detail .toggles")
    page.fill("#reviewer", "ana")
    page.press("#reviewer", "Tab")
    with page.expect_download() as dl:
        page.click("#download")
    path = tmp_path / "review.json"
    dl.value.save_as(path)
    obj = json.loads(path.read_text())
    assert obj["reviewer"] == "ana"
    got = load_review(path)
    assert (got["s01"].blind, got["s01"].seen, got["s01"].decision) == (
        True,
        "the <b>lips</b> look smoothed",
        "rejected",
    )
    assert (got["s00"].blind, got["s00"].seen) == (False, None)
