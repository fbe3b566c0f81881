"""Thumbnails and the static report (photoarchive.report) on a synthetic results tree, and the report in a
real browser (headless Chromium from apt, driven by Playwright; skipped when either is missing)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path
from urllib.parse import unquote

import cv2
import numpy as np
import pytest
from PIL import Image
from report_tree import make_report_tree

from photoarchive.manifest import STATUS_MEANING
from photoarchive.report import (
    STATUS_CODES,
    output_label,
    reason_kind,
    thumbnail_bytes,
    write_report,
    write_sample,
    write_thumbnails,
)
from photoarchive.stages import file_path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def _png(path: Path, w: int, h: int, dtype=np.uint8) -> Path:
    peak = 65535 if dtype == np.uint16 else 255
    ramp = np.linspace(0, peak, w * h * 3).reshape(h, w, 3).astype(dtype)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), ramp)
    return path


def _chunks(data_dir: Path) -> list[list]:
    records = []
    for number, path in enumerate(sorted(data_dir.glob("rows-*.js"))):
        text = path.read_text(encoding="utf-8")
        assert text.startswith(f"REPORT_CHUNK({number},") and text.endswith(");\n")
        records += json.loads(text[text.index(",") + 1:text.rindex(")")])
    return records


def _index(data_dir: Path) -> dict:
    """The row index the filters and sorting load (report-data/index.js)."""
    text = (data_dir / "index.js").read_text(encoding="utf-8")
    assert text.startswith("REPORT_INDEX(") and text.endswith(");\n")
    return json.loads(text[len("REPORT_INDEX("):text.rindex(")")])


def _manifest(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _thumb_dirs(results: Path, batches: dict) -> list[Path]:
    for batch, pairs in batches.items():
        write_thumbnails(pairs, results / "thumbs" / batch, 64, 85)
    return [results / "thumbs" / b for b in batches]


@pytest.fixture
def small(tmp_path):
    """120 input files (3 pages), with thumbnails and the report written."""
    results, manifest, batches = make_report_tree(tmp_path, 120)
    dirs = _thumb_dirs(results, batches)
    summary = write_report(manifest, results, results / "report.html", dirs)
    return results, manifest, batches, dirs, summary


def test_thumbnails_have_the_long_side_asked_for_and_skip_failed_photos(tmp_path):
    pairs = {
        "wide-00000001": (_png(tmp_path / "stamp" / "wide.png", 400, 200, np.uint16),
                          _png(tmp_path / "restore" / "wide.png", 400, 200)),
        "tall-00000002": (_png(tmp_path / "stamp" / "tall.png", 60, 90),
                          _png(tmp_path / "restore" / "tall.png", 60, 90)),
        "failed-00000003": (_png(tmp_path / "stamp" / "failed.png", 80, 80), tmp_path / "restore" / "missing.png"),
    }
    (tmp_path / "restore" / "broken.png").write_bytes(b"\x89PNG not really")
    pairs["broken-00000004"] = (pairs["tall-00000002"][0], tmp_path / "restore" / "broken.png")
    out = tmp_path / "thumbs" / "b0000"
    done = write_thumbnails(pairs, out, long_side=100, quality=85)
    assert done == ["tall-00000002", "wide-00000001"]
    assert sorted(p.name for p in out.iterdir()) == [
        "tall-00000002_after.jpg", "tall-00000002_before.jpg", "wide-00000001_after.jpg", "wide-00000001_before.jpg"]
    for side in ("before", "after"):
        with Image.open(out / f"wide-00000001_{side}.jpg") as im:
            assert im.format == "JPEG" and im.size == (100, 50) and im.mode == "RGB"
        with Image.open(out / f"tall-00000002_{side}.jpg") as im:
            assert im.size == (60, 90)  # never enlarged
    # the 16-bit scan keeps its tones: a ramp from black to white, not a black or clipped image
    with Image.open(out / "wide-00000001_before.jpg") as im:
        values = np.asarray(im.convert("L"))
    assert values.min() < 40 and values.max() > 215
    assert not list(out.parent.glob(".*"))  # no temporary folder left beside it


def test_thumbnail_bytes_refuses_what_it_cannot_read(tmp_path):
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nothing")
    with pytest.raises(ValueError):  # ImageRejected
        thumbnail_bytes(bad)
    with pytest.raises(OSError):
        thumbnail_bytes(tmp_path / "missing.png")


def test_reason_kind_groups_reasons_without_their_numbers():
    assert reason_kind("face 1: identity distance 0.52 from the scan > 0.45: may differ") == \
        reason_kind("face 0: identity distance 0.61 from the scan > 0.45: may differ")
    assert reason_kind("colour cast 12.5 > 10.0 after enhancement: colours still tinted") == \
        "colour cast # > # after enhancement"
    assert reason_kind("byte-identical copy of family/img001.jpg") == "byte-identical copy"
    assert reason_kind("stopped in matting: see logs/matte/x.log; re-run snakemake") == "stopped in matting"


def test_report_page_links_sizes_counts_and_accessibility(small):
    results, manifest, batches, dirs, summary = small
    page = (results / "report.html").read_text(encoding="utf-8")
    rows = _manifest(manifest)
    assert re.search(r'<html lang="en">', page)
    assert "base64" not in page and "data:image" not in page
    assert summary == {"rows": 120, "html_bytes": len(page.encode()), "chunks": 3}
    # counts per status, as in the manifest
    counts = re.findall(r'<tr><td class="(\w+)">\1</td><td>(\d+)</td>', page.split('id="reasons"')[0])
    # every status the manifest knows (STATUS_MEANING: also "rejected", a reviewer's decision), with its count
    assert {s: int(n) for s, n in counts} == {s: sum(r["status"] == s for r in rows) for s in STATUS_MEANING}
    # counts per reason: every review row's reasons are counted once
    reason_table = page.split('id="reasons"')[1].split("</table>")[0]
    review_total = sum(int(n) for n in re.findall(r'<td class="review">review</td><td>[^<]*</td><td>(\d+)</td>',
                                                   reason_table))
    assert review_total == sum(len(r["reason"].split("; ")) for r in rows if r["status"] == "review")
    # the page's links
    for href in re.findall(r'href="([^"]+)"', page) + re.findall(r'DATA = "([^"]+)"', page):
        assert (results / unquote(href)).exists(), href
    records = _chunks(results / "report-data")
    assert [(r[0], r[1]) for r in records] == [(r["source"], r["status"]) for r in rows]
    with_thumbs = 0
    for record, row in zip(records, rows, strict=True):
        source, status, reasons, thumb, links, _details = record
        if thumb:
            with_thumbs += 1
            for src, w, h in (thumb[0:3], thumb[3:6]):
                with Image.open(results / unquote(src)) as im:
                    assert im.size == (w, h)  # the width/height attributes the page sets
        assert bool(thumb) == (status in ("processed", "review"))  # failed and duplicates have none
        labels = [label for label, _href, _size in links]
        if status in ("processed", "review"):
            assert labels == ["restored", "matte", "foreground", "damage mask", "QA verdict"]
            assert reasons == (row["reason"].split("; ") if status == "review" else ["all QA checks passed"])
        else:
            assert labels == []
        for _label, href, size in links:
            target = results / unquote(href)
            assert target.is_file() and target.stat().st_size == size
    assert with_thumbs == sum(r["status"] in ("processed", "review") for r in rows)
    # the index the filters and sorting use: one status letter per row, in manifest order
    index = _index(results / "report-data")
    assert index["s"] == "".join(STATUS_CODES[r["status"]] for r in rows)


def test_published_files_are_those_the_publish_record_lists(tmp_path):
    """Links come from results/publish/<photo>.json ("files", relative to results/); a photo whose record
    is missing or is for another status than the manifest's links just the manifest's output."""
    results, manifest, _batches = make_report_tree(tmp_path, 12)
    rows = _manifest(manifest)
    listed, missing, stale = [r for r in rows if r["status"] in ("processed", "review")][:3]
    record_file = file_path(results, "publish", listed["photo_id"])
    record = json.loads(record_file.read_text(encoding="utf-8"))
    record["files"] = list(reversed([f for f in record["files"] if not f.endswith("_damage.png")]))
    renamed = Path(record["files"][0]).with_name("other name_fg.png").as_posix()  # any name the record gives
    (results / record["files"][0]).rename(results / renamed)
    record["files"][0] = renamed
    record_file.write_text(json.dumps(record), encoding="utf-8")
    file_path(results, "publish", missing["photo_id"]).unlink()
    rows[6]["status"] = "rejected"  # a reviewer's reject; publishing has not run since
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    stale_file = file_path(results, "publish", stale["photo_id"])
    stale_file.write_text(json.dumps({**json.loads(stale_file.read_text(encoding="utf-8")), "status": "rejected"}),
                          encoding="utf-8")
    write_report(manifest, results, results / "report.html")
    links = {r[0]: r[4] for r in _chunks(results / "report-data")}
    assert [(label, unquote(href)) for label, href, _size in links[listed["source"]]] == [
        ("restored", record["files"][2]), ("matte", record["files"][1]), ("foreground", renamed),
        ("QA verdict", f"qa/{listed['photo_id']}.json")]
    for row in (missing, stale, rows[6]):
        assert [(label, unquote(href)) for label, href, _size in links[row["source"]]] == [
            ("restored", row["output"].removeprefix("results/")), ("QA verdict", f"qa/{row['photo_id']}.json")]
    assert output_label("review/a_fg_restored.tif") == "restored" and output_label("x/notes.txt") == "notes.txt"


@pytest.mark.parametrize("photos", [1000, 10000])
def test_report_html_stays_under_50_kb(tmp_path, photos):
    results, manifest, _batches = make_report_tree(tmp_path, photos)
    summary = write_report(manifest, results, results / "report.html")
    size = (results / "report.html").stat().st_size
    assert summary["rows"] == photos and size == summary["html_bytes"]
    assert size <= 50 * 1024, size
    # what one page loads besides the thumbnails: the page and one row file
    assert max(p.stat().st_size for p in (results / "report-data").glob("rows-*.js")) <= 50 * 1024


def test_a_status_the_report_does_not_know_gets_its_own_letter(tmp_path):
    results, manifest, _batches = make_report_tree(tmp_path, 30)
    rows = _manifest(manifest)
    rows[3]["status"] = "rejected"  # e.g. a reviewer's decision
    with open(manifest, "w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    write_report(manifest, results, results / "report.html")
    page = (results / "report.html").read_text(encoding="utf-8")
    index = _index(results / "report-data")
    letter = index["s"][3]
    assert letter not in STATUS_CODES.values() and index["s"].count(letter) == 1
    assert f'<option value="{letter}">rejected (1)</option>' in page
    assert '<tr><td class="rejected">rejected</td><td>1</td>' in page


def test_sample_for_snakemake_report_takes_review_photos_first(small):
    results, manifest, batches, dirs, _summary = small
    chosen = write_sample(manifest, dirs, results / "report-sample", 5)
    rows = {r["photo_id"]: r["status"] for r in _manifest(manifest)}
    review = [pid for pid, status in rows.items() if status == "review"]
    assert chosen == review[:5]
    assert sorted(p.name for p in (results / "report-sample").iterdir()) == sorted(
        f"{pid}_{side}.jpg" for pid in chosen for side in ("before", "after"))


# --- in a real browser ------------------------------------------------------------------------------

@pytest.fixture
def browser():
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright is missing: pip install playwright (browser tests skipped)")
    if not Path(CHROMIUM).exists():
        pytest.skip("Chromium is missing: sudo apt-get install -y chromium (browser tests skipped)")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


def _tab_to(page, element_id: str, limit: int = 40) -> None:
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement && document.activeElement.id") == element_id:
            return
    raise AssertionError(f"#{element_id} cannot be reached with the Tab key")


def _shown(page) -> list[dict]:
    return page.eval_on_selector_all("#rows tbody tr", """trs => trs.map(tr => ({
        source: tr.cells[0].textContent, status: tr.cells[1].textContent,
        imgs: Array.from(tr.querySelectorAll('img')).map(i => ({alt: i.alt, loading: i.loading,
              w: i.getAttribute('width'), h: i.getAttribute('height'), src: i.getAttribute('src')}))}))""")


def test_report_in_a_browser_filters_and_sorts_by_keyboard(small, browser):
    results, manifest, _batches, _dirs, _summary = small
    rows = _manifest(manifest)
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto((results / "report.html").as_uri())
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length > 0")
    shown = _shown(page)
    assert [r["source"] for r in shown] == [r["source"] for r in rows[:50]]  # first page, manifest order
    assert page.query_selector("x") is None  # the file name "photo_00007 <x>.jpg" stayed text
    assert any("<x>" in r["source"] for r in shown)
    for r in shown:
        for img in r["imgs"]:
            assert img["alt"].strip() and r["source"] in img["alt"]
            assert img["loading"] == "lazy" and int(img["w"]) > 0 and int(img["h"]) > 0
            assert (results / unquote(img["src"])).is_file()
    assert page.text_content("#position") == "Photos 1 to 50 of 120 (page 1 of 3)"

    # filter by status with the keyboard only
    _tab_to(page, "f-status")
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # visible focus
    page.keyboard.press("ArrowDown")  # processed
    page.keyboard.press("ArrowDown")  # review
    page.wait_for_function("document.querySelector('#position').textContent.includes('of 24 ')")
    review = [r["source"] for r in rows if r["status"] == "review"]
    assert len(review) == 24
    shown = _shown(page)
    assert [r["source"] for r in shown] == review and {r["status"] for r in shown} == {"review"}

    # then by reason: the first reason listed that review photos have
    kinds = page.eval_on_selector_all("#f-reason option", "os => os.map(o => o.textContent)")[1:]
    review_kinds = {reason_kind(x) for r in rows if r["status"] == "review" for x in r["reason"].split("; ")}
    kind = next(k for k in kinds if k in review_kinds)
    _tab_to(page, "f-reason")
    for _ in range(kinds.index(kind) + 1):
        page.keyboard.press("ArrowDown")
    assert page.eval_on_selector("#f-reason", "s => s.options[s.selectedIndex].textContent") == kind
    expected = [r["source"] for r in rows if r["status"] == "review"
                and any(reason_kind(x) == kind for x in r["reason"].split("; "))]
    page.wait_for_function(f"document.querySelector('#position').textContent.includes('of {len(expected)} ')")
    assert [r["source"] for r in _shown(page)] == expected and expected

    # sort all photos by output size, largest first
    page.focus("#f-reason")
    page.keyboard.press("Home")
    page.focus("#f-status")
    page.keyboard.press("Home")
    _tab_to(page, "sort")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")  # size
    page.wait_for_function("document.querySelector('#position').textContent.includes('of 120 ')")
    sizes = {r[0]: sum(max(link[2], 0) for link in r[4]) for r in _chunks(results / "report-data")}
    order = sorted(range(len(rows)), key=lambda k: (-sizes[rows[k]["source"]], k))
    assert [r["source"] for r in _shown(page)] == [rows[k]["source"] for k in order[:50]]

    # next page with the keyboard; the view is kept in the address
    _tab_to(page, "next")
    page.keyboard.press("Enter")
    page.wait_for_function("document.querySelector('#position').textContent.startsWith('Photos 51 to 100')")
    assert [r["source"] for r in _shown(page)] == [rows[k]["source"] for k in order[50:100]]
    assert "sort=size" in page.url and "page=2" in page.url
    page.reload()
    page.wait_for_function("document.querySelector('#position').textContent.startsWith('Photos 51 to 100')")
    assert errors == []
