"""A whole review in the real dashboard, in headless Chromium: from no project at all to the final PRISMA diagram.

Everything is done in the browser, as a reviewer would: the dashboard starts (local mode,
no ``[auth]``) on a project file that does not exist yet; the project is created in the
sidebar, a reviewer added and signed in; Setup gets the query, the criteria, the highlight
keywords, the exclusion reasons of both stages and the screening modes; a real file is
uploaded on Search & import; every record is screened by keys (one maybe), the maybe is
found on History and changed, the page is reloaded (the project and the page are in the
URL), the provisional PRISMA diagram is drawn, every report sought is settled on Full
text, and the final diagram is drawn. The test reads the database only at the end, to
check what the browser did. Screenshots go to ``tests/artifacts/review-*.png``.

The upload, ``tests/fixtures/dashboard/review_pain.csv``, is 11 records cut unchanged
(rows 111-114, 3, 13, 18, 23, 28, 50 and 1 of the data, in that order; the
``source_label_included`` column left out, so no label comes with the records) from
``../shared/psychedelics/psychedelic_pain_records.csv``: four psychedelic studies from the
Covidence exports, six ketamine-for-pain records of Cohen 2006 and one animal study of
Bannach-Brown 2019.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from test_browser_e2e import (
    ARTIFACTS,
    RENDER_TIMEOUT_MS,
    browser_missing,
    chromium_page,
    decision_rows,
    focus_page,
    live,
    live_button,
    live_reason_field,
    shown_record,
    streamlit_server,
    wait_for_next_record,
)

pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))]

UPLOAD = Path(__file__).resolve().parent / "fixtures" / "dashboard" / "review_pain.csv"
RECORDS = 11  # rows of UPLOAD, none a duplicate of another
SOURCE = "Psychedelic pain records"
NAME = "Psychedelics for pain"
REVIEWER = "alice"
QUERY = "(psilocybin OR LSD OR ketamine) AND pain"
CRITERIA = "Randomised trials in people with pain, given a psychedelic or ketamine; any pain outcome."
INCLUDE_WORDS = ["psilocybin", "ketamine", "randomised"]
EXCLUDE_WORDS = ["buffaloes", "case report"]
REASONS = {
    "title_abstract": ["not a trial", "animal study", "wrong population"],
    "full_text": ["no pain outcome", "wrong comparator"],
}
# Title/abstract, by keys, in the order the records come: (keys, value, reason typed first, reason recorded).
# A digit picks that title-stage reason, which Exclude (E) then records; a typed reason is left with Escape.
SCREEN_PLAN = [
    ("i", "include", None, None),
    ("1e", "exclude", None, "not a trial"),
    ("i", "include", None, None),
    ("m", "maybe", None, None),
    ("2e", "exclude", None, "animal study"),
    ("e", "exclude", "a case report", "a case report"),  # its letters must not act as shortcuts
    ("i", "include", None, None),
    ("3e", "exclude", None, "wrong population"),
    ("e", "exclude", None, None),
    ("i", "include", None, None),
    ("1e", "exclude", None, "not a trial"),
]
MAYBE_NOTE = "read again: a randomised trial"
# Full text, report by report as the page offers them: (retrieved, value, full-text reason)
FULL_TEXT_PLAN = [
    (True, "include", None),
    (False, None, None),
    (True, "exclude", "no pain outcome"),
    (True, "include", None),
    (True, "exclude", "wrong comparator"),
]


def sidebar(page):
    return page.locator("[data-testid='stSidebar']")


def drawn(page) -> None:
    """After the outcome of an action is on the page: wait until the run has ended and nothing stale is left."""
    page.wait_for_function(
        """() => !document.querySelector("[data-stale='true'], [data-testid='stStatusWidget']")""",
        timeout=RENDER_TIMEOUT_MS,
    )


def screenshot(page, name: str) -> Path:
    """The whole page once drawn: Streamlit scrolls inside the window, so the window is made as tall as the page."""
    drawn(page)
    path = ARTIFACTS / f"review-{name}.png"
    viewport = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], section')].map((e) => e.scrollHeight))"
    )
    page.set_viewport_size({"width": viewport["width"], "height": max(viewport["height"], height)})
    try:
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(viewport)
    return path


def open_page(page, title: str, heading: str) -> None:
    sidebar(page).get_by_role("link", name=title, exact=True).click()
    page.get_by_role("heading", name=heading).first.wait_for()


def wait_gone(page, text: str) -> None:
    """Wait until no element of the page shows ``text`` (the rerun that changes it has been drawn)."""
    page.wait_for_function("(text) => !document.body.innerText.includes(text)", arg=text, timeout=RENDER_TIMEOUT_MS)


def shown_value(box) -> str:
    """What a Streamlit select box shows as chosen (its text, or its input's value)."""
    return box.evaluate("(el) => [el.innerText, ...[...el.querySelectorAll('input')].map((i) => i.value)].join(' ')")


def pick_option(page, box, option: str) -> None:
    """Choose ``option`` in a Streamlit select box."""
    box.click()
    page.get_by_role("option", name=option, exact=True).click()


def create_project_and_sign_in(page, url: str, db: Path) -> None:
    page.goto(url)
    sidebar(page).get_by_text("no such project").first.wait_for()  # the location is empty
    sidebar(page).get_by_text("New project", exact=True).click()
    sidebar(page).get_by_label("File path or database URL", exact=True).fill(str(db))
    sidebar(page).get_by_label("Review name", exact=True).fill(NAME)
    live_button(sidebar(page), "Create and open").click()
    sidebar(page).get_by_text(NAME, exact=True).wait_for()  # the open project's name, under the picker
    sidebar(page).get_by_label("Name", exact=True).fill(REVIEWER)  # "New reviewer" is open: nobody yet
    live_button(sidebar(page), "Add and sign in").click()
    page.get_by_text("Nothing to rank yet").wait_for()  # the Screen page, for a reviewer, of a project with no record
    assert REVIEWER in shown_value(sidebar(page).locator("[data-testid='stSelectbox']").first)


def set_up(page) -> None:
    open_page(page, "Setup", "Setup")
    page.get_by_label("Search query", exact=True).fill(QUERY)
    page.get_by_label("Inclusion criteria", exact=True).fill(CRITERIA)
    page.get_by_label("Include keywords (one per line)", exact=True).fill("\n".join(INCLUDE_WORDS))
    page.get_by_label("Exclude keywords (one per line)", exact=True).fill("\n".join(EXCLUDE_WORDS))
    live_button(page, "Save").click()
    page.get_by_text("Saved ").first.wait_for()
    for stage, reasons in REASONS.items():
        for n, reason in enumerate(reasons, 1):
            live(page, f".st-key-reason_new_{stage}").locator("input").fill(reason)
            live(page, f".st-key-reason_add_{stage}").locator("button").click()
            page.get_by_text(f"{n}. {reason}", exact=True).wait_for()
    for n, (stage, label) in enumerate((("title_abstract", "Title and abstract"), ("full_text", "Full text"))):
        live(page, f".st-key-mode_{stage}").get_by_text("single", exact=True).click()
        live_button(page, "Save mode").nth(n).click()
        page.get_by_text(f"{label}: single.", exact=True).wait_for()
    screenshot(page, "setup")


def upload(page) -> None:
    open_page(page, "Search & import", "Search & import")
    live(page, ".st-key-import_file").locator("input[type='file']").set_input_files(UPLOAD)
    live(page, ".st-key-import_file").get_by_text(UPLOAD.name).wait_for()
    page.get_by_label("Source name (e.g. Embase)", exact=True).fill(SOURCE)
    live_button(page, "Import").click()
    page.get_by_text(f"{UPLOAD.name}: {RECORDS} records imported").wait_for()
    screenshot(page, "import")


def screen_by_keys(page) -> list[tuple[int, str, str | None]]:
    """Decide every record with the keyboard; (record id, value, reason) of each, in order."""
    open_page(page, "Screen", "Screen titles and abstracts")
    page.get_by_text(CRITERIA).first.wait_for()  # the criteria beside the record
    # the keys work once the page's shortcut script has run (screening/dashboard/shortcuts.py)
    page.wait_for_function("() => Boolean(window.__screeningShortcuts)", timeout=RENDER_TIMEOUT_MS)
    seen = []
    for n, (keys, value, typed, recorded) in enumerate(SCREEN_PLAN):
        record = shown_record(page)
        seen.append((record, value, recorded))
        if typed:
            live_reason_field(page).press_sequentially(typed)
            page.keyboard.press("Escape")  # leaves the box: the next letter is a shortcut again
        else:
            focus_page(page)
        if keys[0].isdigit():  # as a reviewer does, once the record's reasons are drawn
            live(page, f"[class*='st-key-screen_pick_{record}']").wait_for()
            page.keyboard.press(keys[0])
            page.locator(f"[class*='st-key-screen_pick_{record}'] button[aria-checked='true']").first.wait_for()
        page.keyboard.press(keys[-1])
        if n < len(SCREEN_PLAN) - 1:
            wait_for_next_record(page, record)
        else:
            page.get_by_text("Nothing left for you to screen at title/abstract.").wait_for()
    counter = page.locator("[data-testid='stMarkdownContainer']", has_text="screened by you").first
    assert re.sub(r"\s+", " ", counter.inner_text()) == f"{RECORDS} screened by you · 0 left"
    screenshot(page, "screen")
    return seen


def change_the_maybe(page) -> None:
    """On History: one click to the maybe pile, then change the maybe to include."""
    open_page(page, "History", "Your decisions")
    page.get_by_text("You have 1 maybe decision(s)").wait_for()
    live_button(page, "Show my maybes").click()
    page.get_by_text("maybe (1)").wait_for()
    wait_gone(page, "You have 1 maybe decision(s)")
    live(page, ".st-key-history_new_value").get_by_text("include", exact=True).click()
    page.get_by_label("Note (optional)", exact=True).fill(MAYBE_NOTE)
    live_button(page, "Change decision").click()
    page.get_by_text("changed from maybe to include at title/abstract").wait_for()
    page.get_by_text("maybe (0)").wait_for()  # the pile is empty now
    page.get_by_text("None of your decisions match these filters.").wait_for()
    screenshot(page, "history")


# the choice shown in the Full text page's "Report" box ("12: its title"), once drawn; null while it is not
REPORT_SHOWN = """() => {
    const boxes = [...document.querySelectorAll(
        "[data-testid='stElementContainer']:not([data-stale='true']) [data-testid='stSelectbox']"
    )].filter((box) => box.querySelector("label")?.innerText.trim() === "Report");
    const input = boxes.length === 1 ? boxes[0].querySelector("input") : null;
    return input && /^\\d+: /.test(input.value) ? input.value : null;
}"""


def open_report(page, other_than: int | None = None) -> int:
    """The report the Full text page has open (another than ``other_than``): its box and its card agree."""
    page.wait_for_function(
        f"(other) => {{ const shown = ({REPORT_SHOWN})(); return shown && !shown.startsWith(other + ': '); }}",
        arg=other_than,
        timeout=RENDER_TIMEOUT_MS,
    )
    drawn(page)
    record, title = re.match(r"(\d+): (.*)$", page.evaluate(REPORT_SHOWN), re.S).groups()
    card = live(page, "[data-testid='stElementContainer']").locator(".record-title").first.inner_text()
    assert " ".join(card.split()).startswith(" ".join(title.split())), (record, title, card)
    return int(record)


def settle_full_text(page) -> list[tuple[int, str, str | None]]:
    """Retrieval, then include or exclude with a reason, for every report sought; (record, value, reason) rows."""
    open_page(page, "Full text", "Full text")
    rows = []
    record = None
    for retrieved, value, reason in FULL_TEXT_PLAN:
        record = open_report(page, other_than=record)  # the settled report has left the list of those to do
        live(page, ".st-key-ft_retrieved").get_by_text("yes" if retrieved else "no", exact=True).click()
        live_button(page, "Save retrieval").click()
        rows.append((record, "retrieved" if retrieved else "not_retrieved", None))
        if retrieved:
            wait_gone(page, "record the retrieval first")
            live(page, ".st-key-ft_value").get_by_text(value, exact=True).click()
            if reason:
                pick_option(page, live(page, ".st-key-ft_reason").first, reason)
            live_button(page, "Save decision").click()
            rows.append((record, value, reason))
    page.get_by_text("Every report sought has a full-text decision").wait_for()
    page.get_by_text("Only reports not yet decided", exact=True).click()  # every report, with its outcome
    open_report(page)
    screenshot(page, "fulltext")
    return rows


def prisma_json(page) -> dict:
    """The counts the PRISMA page offers as its JSON download."""
    with page.expect_download() as download:
        live_button(page, "JSON").click()
    return json.loads(Path(download.value.path()).read_text())


def diagram_lines(page) -> list[str]:
    """The lines of text of the PRISMA diagram the page shows (the SVG behind its image)."""
    image = "[data-testid='stElementContainer']:not([data-stale='true']) [data-testid='stImage'] img"
    # The image of the run that has ended (a download click reruns the page and redraws it), fetched in the
    # same step as it is found, so a redraw between finding and fetching cannot leave nothing to fetch.
    drawn(page)
    fetch = """async (image) => {
        const img = document.querySelector(image);
        if (!img || !img.src) return null;
        const response = await fetch(img.src);
        return response.ok ? await response.text() : null;
    }"""
    svg = page.evaluate(fetch, image)  # evaluate awaits the fetch (wait_for_function would not)
    for _ in range(RENDER_TIMEOUT_MS // 100):
        if svg is not None:
            break
        page.wait_for_timeout(100)  # redrawn between finding and fetching: the new image is on its way
        svg = page.evaluate(fetch, image)
    assert svg is not None, "no PRISMA diagram image to fetch"
    return [html.unescape(line).strip() for line in re.findall(r"<text[^>]*>(.*?)</text>", svg, re.S)]


def box(lines: list[str], label: str) -> str:
    """The count under a box's label ("(n = 11)"), or on the label's own line."""
    at = lines.index(label)
    return lines[at + 1] if lines[at + 1].startswith("(n = ") else lines[at]


def test_a_review_from_an_empty_project_to_the_final_prisma_diagram(tmp_path: Path) -> None:
    from screening.queries import reviewer_decisions
    from screening.reviewers import get_mode, list_reasons
    from screening.setup import read_setup
    from screening.store import open_store

    # the dashboard starts on a location that holds no project, and the review is created elsewhere, so
    # a reload that opens it again proves it came from the URL (the server's --db is never put there)
    empty, db = tmp_path / "empty" / "none.db", tmp_path / "review.db"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with streamlit_server(empty, tmp_path / "streamlit.log") as url, chromium_page() as page:
        try:
            create_project_and_sign_in(page, url, db)
            set_up(page)
            upload(page)
            screened = screen_by_keys(page)
            change_the_maybe(page)

            page.reload()  # the same project, page and reviewer come back from the URL
            page.get_by_role("heading", name="Your decisions").wait_for()
            page.get_by_text(f"all ({RECORDS})").wait_for()  # the signed-in reviewer's decisions
            address = urlparse(page.url)
            assert address.path.rstrip("/").endswith("/history")
            assert parse_qs(address.query).get("project") == [str(db)], page.url
            sidebar(page).get_by_text(NAME, exact=True).wait_for()
            assert REVIEWER in shown_value(sidebar(page).locator("[data-testid='stSelectbox']").first)

            open_page(page, "PRISMA", "PRISMA 2020")
            page.get_by_text("Provisional", exact=True).wait_for()
            sought = sum(value == "include" for _, value, _ in screened) + 1  # and the maybe, now an include
            page.get_by_text(f"{sought} awaiting a retrieval decision").first.wait_for()
            provisional = prisma_json(page)
            screenshot(page, "prisma-provisional")

            full_text = settle_full_text(page)

            open_page(page, "PRISMA", "PRISMA 2020")
            page.get_by_text("PRISMA 2020 flow diagram", exact=True).wait_for()  # the final diagram's caption
            assert page.get_by_text("Provisional").count() == 0
            final, drawn_final = prisma_json(page), diagram_lines(page)
            screenshot(page, "prisma-final")
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "review-failure.png"), full_page=True)  # where it stopped
            raise

    # what the browser did is in the database, under the reviewer signed in
    maybe = next(record for record, value, _ in screened if value == "maybe")
    rows = decision_rows(db)
    assert {row[3] for row in rows} == {REVIEWER}
    assert [row[:3] for row in rows] == [
        *screened,
        (maybe, "undo", None),  # the revision on History: an undo of the maybe, then the include
        (maybe, "include", None),
        *full_text,
    ]
    assert len({record for record, _, _ in screened}) == RECORDS
    with open_store(db) as store:
        topic = read_setup(store)
        assert (topic.name, topic.query, topic.criteria) == (NAME, QUERY, CRITERIA)
        assert (sorted(topic.include_keywords), sorted(topic.exclude_keywords)) == (
            sorted(INCLUDE_WORDS),
            sorted(EXCLUDE_WORDS),
        )
        assert {stage: list_reasons(store, stage) for stage in REASONS} == REASONS
        assert [get_mode(store, stage).mode for stage in REASONS] == ["single", "single"]
        now = {d.record_id: d for d in reviewer_decisions(store, REVIEWER, stage="title_abstract")}
        assert (now[maybe].value, now[maybe].note) == ("include", MAYBE_NOTE)  # as changed on History

    # the diagrams' numbers are the decisions': provisional while reports awaited retrieval, then final
    excluded_ta = sum(value == "exclude" for _, value, _ in screened)
    assert provisional["provisional"] is True
    assert provisional["awaiting"] == {"screening": 0, "retrieval": sought, "full_text": 0}
    assert final["provisional"] is False
    assert final["awaiting"] == {"screening": 0, "retrieval": 0, "full_text": 0}
    assert final["database_specific_results"] == [{"name": SOURCE, "n": RECORDS}]
    assert (final["database_results"], final["duplicates"], final["excluded_automatic"]) == (RECORDS, 0, 0)
    assert (final["records_screened"], final["records_excluded"]) == (RECORDS, excluded_ta)
    assert final["new_studies"] == final["dbr"]["included"]
    ft = final["dbr"]
    assert ft["sought_reports"] == sought == RECORDS - excluded_ta
    assert ft["notretrieved_reports"] == sum(value == "not_retrieved" for _, value, _ in full_text)
    assert ft["assessed"] == sum(value == "retrieved" for _, value, _ in full_text)
    assert ft["included"] == sum(value == "include" for _, value, _ in full_text) == 2
    assert ft["excluded"] == [{"reason": reason, "n": 1} for reason in REASONS["full_text"]]
    # and the diagram drawn on the page shows those numbers
    assert box(drawn_final, "Records screened") == f"(n = {RECORDS})"
    assert box(drawn_final, "Records excluded") == f"(n = {excluded_ta})"
    assert box(drawn_final, "Reports sought for retrieval") == f"(n = {sought})"
    assert box(drawn_final, "Reports not retrieved") == f"(n = {ft['notretrieved_reports']})"
    assert box(drawn_final, "Reports assessed for eligibility") == f"(n = {ft['assessed']})"
    assert [f"{reason} (n = 1)" for reason in REASONS["full_text"]] == drawn_final[
        drawn_final.index("Reports excluded:") + 1 : drawn_final.index("Reports excluded:") + 3
    ]
    assert box(drawn_final, "New studies included in review") == f"(n = {ft['included']})"
    assert not any("PROVISIONAL" in line for line in drawn_final)
    assert (ARTIFACTS / "review-prisma-final.png").stat().st_size > 10_000
