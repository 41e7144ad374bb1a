"""End to end: the real dashboard (``streamlit run app.py``) driven in headless Chromium through Playwright.

The helpers here are shared with ``benchmarks/dashboard_latency.py``. Chromium is
Debian's (``apt-get install chromium``), driven by the ``playwright`` Python package
with ``executable_path``; ``playwright install`` is never needed. The project is a SQLite
file, or a database on the throwaway PostgreSQL server of ``tests/pgserver.py``.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pgserver import free_port  # one free-port helper for every server the tests start

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("SCREENING_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
START_TIMEOUT_S = 60
ARTIFACTS = ROOT / "tests" / "artifacts"  # screenshots, and what a timed-out wait saw
RENDER_TIMEOUT_MS = 60_000
POLL_MS = 5  # how often the page is checked for the next record (also the benchmark's resolution)
RECORD_CAPTION = re.compile(r"^Record (\d+)$")


def browser_missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if shutil.which(CHROMIUM) is None and not Path(CHROMIUM).exists():
        return f"{CHROMIUM} not found (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright)"
    return None


@contextmanager
def streamlit_server(db: str | os.PathLike[str], log: Path) -> Iterator[str]:
    """``streamlit run app.py -- --db DB`` on a free local port; yields its URL and stops it afterwards.

    ``db`` is a project file or a database URL (``postgresql+psycopg2://...``), as ``--db`` takes.
    """
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "app.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",  # edits to the checkout during a run must not reload the app under test
        "--",
        "--db",
        os.fspath(db),
    ]
    env = {k: v for k, v in os.environ.items() if k != "SCREENING_DB"}
    url = f"http://127.0.0.1:{port}"
    with server_process(command, f"{url}/_stcore/health", log, env=env):
        yield url


@contextmanager
def server_process(command: list[str], health: str, log: Path, env: dict[str, str] | None = None) -> Iterator[None]:
    """Run ``command`` from the checkout (output to ``log``) until ``health`` answers; stop it afterwards."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, env=env)
        try:
            wait_healthy(health, proc, log)
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_healthy(health: str, proc: subprocess.Popen, log: Path) -> None:
    """Wait until ``health`` answers 200, or fail with the server's log if it exits or stays silent."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(health, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.25)
    raise RuntimeError(f"nothing answered on {health} within {START_TIMEOUT_S}s:\n{log.read_text()}")


@contextmanager
def chromium_page() -> Iterator:
    """A Playwright page in Debian's headless Chromium."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.set_default_timeout(RENDER_TIMEOUT_MS)
            with explained_timeouts(lambda: [page]):
                yield page
        finally:
            browser.close()


@contextmanager
def explained_timeouts(pages: Callable[[], list]) -> Iterator[None]:
    """Turn any Playwright wait that times out into an AssertionError saying what each page showed.

    Every wait of a browser test runs inside this (``chromium_page`` and the sign-in tests'
    browser), so a wait that gives up in CI names the record, alerts, exceptions and the status
    widget on the page, and leaves a screenshot, whichever wait it was.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        yield
    except PlaywrightTimeout as e:
        seen = []
        for number, page in enumerate(pages(), start=1):
            try:
                seen.append(f"page {number} ({page.url}): {page_state(page)}")
            except Exception as failure:  # a closed page must not hide the timeout itself
                seen.append(f"page {number}: not readable ({failure})")
        first_line = str(e).strip().splitlines()[0] if str(e).strip() else "timeout"
        raise AssertionError(f"{first_line}; {' | '.join(seen) or 'no page open'}") from e


def sign_in(page, url: str, reviewer: str) -> None:
    """Open the app and pick ``reviewer`` in the sidebar's "Signed in as" box."""
    page.goto(url)
    box = page.locator("[data-testid='stSidebar'] [data-testid='stSelectbox']").first
    box.click()
    page.get_by_role("option", name=reviewer, exact=True).click()
    page.locator(".record-title").first.wait_for()


def shown_record(page) -> int:
    """The id of the record on the Screen page (its "Record N" caption)."""
    caption = page.locator("[data-testid='stCaptionContainer']", has_text=RECORD_CAPTION).first
    caption.wait_for()
    return int(RECORD_CAPTION.match(caption.inner_text().strip()).group(1))


def page_state(page) -> str:
    """What a reviewer would see when a wait gives up: the record shown, alerts, exceptions, the status widget."""
    parts = []
    for name, selector in (
        ("record", "[data-testid='stCaptionContainer']"),
        ("alert", "[data-testid='stAlert']"),
        ("exception", "[data-testid='stException']"),
        ("status", "[data-testid='stStatusWidget']"),
    ):
        texts = [t.strip() for t in page.locator(selector).all_inner_texts() if t.strip()]
        if name == "record":
            texts = [t for t in texts if RECORD_CAPTION.match(t)]
        parts += [f"{name}: {t[:300]}" for t in texts]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"timeout-{int(time.time())}.png"
    page.screenshot(path=str(shot), full_page=True)
    return "; ".join(parts) + f" (screenshot {shot})"


def wait_for_next_record(page, previous: int) -> int:
    """Wait until the page shows a record other than ``previous``: its caption, title and decision buttons drawn.

    On a timeout the error says what the page showed instead (a flash error, an exception,
    the same record), so a failure in CI explains itself.
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        _wait_for_record_other_than(page, previous)
    except PlaywrightTimeout as e:
        raise AssertionError(f"no record after {previous} within {RENDER_TIMEOUT_MS} ms: {page_state(page)}") from e
    return shown_record(page)


def _wait_for_record_other_than(page, previous: int) -> None:
    page.wait_for_function(
        """(previous) => {
            const live = (el) => {
                const box = el.closest("[data-testid='stElementContainer']");
                return !box || box.getAttribute("data-stale") !== "true";
            };
            const caps = [...document.querySelectorAll("[data-testid='stCaptionContainer']")]
                .filter(live).map(c => c.innerText.trim()).filter(t => /^Record \\d+$/.test(t));
            if (caps.length === 0 || caps[0] === "Record " + previous) return false;
            const id = caps[0].split(" ")[1];
            const title = document.querySelector(".record-title");
            const button = document.querySelector("[class*='st-key-decide_exclude_" + id + "']");
            return Boolean(title && title.innerText.length > 0 && button && live(button));
        }""",
        arg=previous,
        polling=POLL_MS,
        timeout=RENDER_TIMEOUT_MS,
    )


def live(where, selector: str):
    """Elements as now drawn: not the stale copies Streamlit leaves on the page while it redraws."""
    return where.locator(f"{selector}:not([data-stale='true'])")


def live_button(where, name: str):
    """The button named ``name`` as now drawn (a stale copy of it may linger while Streamlit redraws)."""
    return live(where, "[data-testid='stElementContainer']").get_by_role("button", name=name, exact=True)


def live_reason_field(page):
    """The reason field of the page as now drawn (while Streamlit redraws, a stale copy may linger)."""
    field = page.locator(
        "[data-testid='stElementContainer']:not([data-stale='true']) input[aria-label='Reason (optional)']"
    )
    page.wait_for_function(
        """() => document.querySelectorAll("[data-testid='stElementContainer']:not([data-stale='true']) "
                 + "input[aria-label='Reason (optional)']").length === 1""",
        polling=POLL_MS,
        timeout=RENDER_TIMEOUT_MS,
    )
    return field


def focus_page(page) -> None:
    """Move keyboard focus off any input, as a reviewer would by clicking the record."""
    page.locator(".record-title").first.click()


# -- the test -------------------------------------------------------------------------------------------
pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))]


def decision_rows(db: str | os.PathLike[str]) -> list[tuple[int, str, str | None, str]]:
    """(record id, value, reason, reviewer) of every decision in the project, in order: one query for any backend."""
    from sqlalchemy import select

    from screening.schema import Decision, Reviewer
    from screening.store import open_store

    query = (
        select(Decision.record_id, Decision.value, Decision.reason, Reviewer.name)
        .join(Reviewer, Reviewer.id == Decision.reviewer_id)
        .order_by(Decision.id)
    )
    with open_store(db) as store, store.read() as session:
        return [tuple(row) for row in session.execute(query)]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_screen_five_records_by_click_and_keyboard(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    from screening.demo import build_demo, load_manifest
    from screening.reviewers import add_reviewer

    db = request.getfixturevalue("pg_url") if backend == "postgresql" else tmp_path / "demo.db"
    suffix = "" if backend == "sqlite" else f"-{backend}"  # SQLite keeps the names docs/dashboard.md gives
    screen_png, prisma_png = ARTIFACTS / f"screen{suffix}.png", ARTIFACTS / f"prisma{suffix}.png"
    with build_demo(db) as store:
        add_reviewer(store, "alice")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    first_reason = load_manifest()["reasons"]["title_abstract"][0]
    plan = [  # how, button or key, value, reason typed first (its letters must not act as shortcuts), reason recorded
        ("click", "Include (I)", "include", None, None),
        ("key", "e", "exclude", None, None),
        ("click", "Exclude (E)", "exclude", "mice in a model of migraine", "mice in a model of migraine"),
        ("escape", "e", "exclude", "wrong population", "wrong population"),  # Escape leaves the box, e excludes
        ("pick", "1", "exclude", None, first_reason),  # 1 picks the first title-stage reason, then e excludes
        ("key", "m", "maybe", None, None),
        ("key", "i", "include", None, None),
    ]
    seen: list[tuple[int, str, str | None]] = []
    with streamlit_server(db, tmp_path / "streamlit.log") as url, chromium_page() as page:
        sign_in(page, url, "alice")
        for how, what, value, typed, recorded in plan:
            record = shown_record(page)
            seen.append((record, value, recorded))
            print(f"step {len(seen)}: {how} {what!r} on record {record}")  # shown if the step fails
            if typed:
                live_reason_field(page).press_sequentially(typed)
            if how == "click":
                page.get_by_role("button", name=what, exact=True).click()
            elif how == "escape":
                page.keyboard.press("Escape")
                page.keyboard.press(what)
            elif how == "pick":  # as a reviewer does, once the record's reasons are drawn
                page.locator(f"[class*='st-key-screen_pick_{record}']:not([data-stale='true'])").wait_for()
                focus_page(page)
                page.keyboard.press(what)
                page.locator(f"[class*='st-key-screen_pick_{record}'] button[aria-checked='true']").first.wait_for()
                page.keyboard.press("e")
            else:
                focus_page(page)
                page.keyboard.press(what)
            wait_for_next_record(page, record)
        counter = page.locator("[data-testid='stMarkdownContainer']", has_text="screened by you").first
        assert str(len(plan)) in counter.inner_text()
        page.screenshot(path=str(screen_png), full_page=True)
        page.get_by_role("link", name="PRISMA").click()
        page.get_by_text("PRISMA 2020", exact=True).first.wait_for()
        page.get_by_text("Provisional", exact=False).first.wait_for()  # the demo is unfinished: a provisional flow
        page.screenshot(path=str(prisma_png), full_page=True)

    rows = decision_rows(db)
    assert [row[:3] for row in rows] == seen
    assert {row[3] for row in rows} == {"alice"}
    assert len({rid for rid, _, _ in seen}) == len(plan)
    assert screen_png.stat().st_size > 10_000 and prisma_png.stat().st_size > 10_000
