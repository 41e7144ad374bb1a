"""The team server end to end: sign-in through a real OpenID Connect provider, in real Chromium.

The provider is ``oidc-provider-mock`` (PyPI), started by the test as its own process on
127.0.0.1 with predefined users (their email verified). The dashboard is the real
``streamlit run app.py`` with ``[auth]`` in a ``secrets.toml`` of the test's own
(``--secrets.files``), on a SQLite file and on the throwaway PostgreSQL server.
Nothing under test is mocked: Streamlit's own ``st.login`` talks to the provider over
HTTP, and the decisions are read back from the database.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from pgserver import free_port
from sqlalchemy import select
from test_browser_e2e import (
    CHROMIUM,
    CHROMIUM_ARGS,
    RENDER_TIMEOUT_MS,
    browser_missing,
    explained_timeouts,
    server_process,
    shown_record,
    wait_for_next_record,
)

from screening.access import Identity
from screening.decisions import visible_decisions
from screening.reviewers import add_reviewer, set_mode
from screening.schema import AuditEvent, Decision, Reviewer
from screening.store import open_store

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "tests" / "artifacts"
PROJECT = "Team review of estrogens"  # the project's name: never on a signed-out visitor's page
USERS = {  # the provider's predefined users: sub -> email (names no abstract holds, so a page that shows one is caught)
    "ann_k7": "ann@lab.example",
    "bob_k7": "Bob@Lab.Example",  # matched case-insensitively to bob@lab.example
    "eve_k7": "eve@elsewhere.example",  # on no project
}
ANN, BOB, EVE = USERS
pytestmark = [pytest.mark.browser, pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing()))]


@contextmanager
def identity_provider(tmp_path: Path) -> Iterator[str]:
    """``oidc-provider-mock`` on a free port of 127.0.0.1; yields its issuer URL."""
    port = free_port()
    command = [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port)]
    for sub, email in USERS.items():
        command += ["--user-claims", json.dumps({"sub": sub, "email": email, "email_verified": True, "name": sub})]
    issuer = f"http://127.0.0.1:{port}"
    with server_process(command, f"{issuer}/.well-known/openid-configuration", tmp_path / "oidc.log"):
        yield issuer


@contextmanager
def team_server(db: str | os.PathLike[str], issuer: str, tmp_path: Path) -> Iterator[str]:
    """``screening serve``'s streamlit command with ``[auth]`` pointing at ``issuer``; yields the app's URL."""
    from screening.server import streamlit_command

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(
        "[auth]\n"
        f'redirect_uri = "{url}/oauth2callback"\n'
        f'cookie_secret = "{secrets.token_hex(32)}"\n'
        'client_id = "screening-tests"\n'
        'client_secret = "not-a-secret"\n'
        f'server_metadata_url = "{issuer}/.well-known/openid-configuration"\n'
    )
    command = streamlit_command(os.fspath(db), host="127.0.0.1", port=port, secrets=secrets_file)
    command[command.index("--") : command.index("--")] = ["--server.fileWatcherType", "none"]
    env = {k: v for k, v in os.environ.items() if k != "SCREENING_DB"}
    env["AUTHLIB_INSECURE_TRANSPORT"] = "1"  # the provider is plain HTTP on loopback
    with server_process(command, f"{url}/_stcore/health", tmp_path / "streamlit.log", env):
        yield url


@contextmanager
def browser() -> Iterator:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            with explained_timeouts(lambda: [page for context in chromium.contexts for page in context.pages]):
                yield chromium
        finally:
            chromium.close()


def new_page(chromium):
    """A page in a context of its own: its own cookies, so its own sign-in."""
    page = chromium.new_context(viewport={"width": 1400, "height": 1000}).new_page()
    page.set_default_timeout(RENDER_TIMEOUT_MS)
    return page


def sign_in(page, url: str, sub: str) -> None:
    """Open the app, press Sign in, pick ``sub`` on the provider's page, and wait to be back."""
    page.goto(url)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name=sub, exact=True).click()  # the provider's predefined user
    page.wait_for_url(f"{url}/**")


def main_text(page) -> str:
    return page.locator("[data-testid='stMain']").inner_text()


def screen(page, values: list[str], *, never: str | None = None) -> list[int]:
    """Decide the records shown, one value each; ``never`` must not appear in the main area of any of them."""
    seen = []
    for value in values:
        record = shown_record(page)
        if never is not None:
            assert never not in main_text(page).lower(), f"record {record} shows {never!r}'s decision"
        seen.append(record)
        page.locator(f"[class*='st-key-decide_{value}_{record}'] button").first.click()
        wait_for_next_record(page, record)
    return seen


def build_project(db: str | os.PathLike[str], *, blind: bool = False) -> None:
    from screening.demo import build_demo

    with build_demo(db) as store:
        store.set_setting("name", PROJECT)
        add_reviewer(store, ANN, role="owner", email=USERS[ANN])
        add_reviewer(store, BOB, email="bob@lab.example")
        if blind:
            set_mode(store, "title_abstract", "dual", blind=True)


def decisions_of(db: str | os.PathLike[str]) -> list[tuple[int, str, str]]:
    query = select(Decision.record_id, Decision.value, Reviewer.name).join(Reviewer).where(Decision.kind == "screen")
    with open_store(db) as store, store.read() as s:
        return [tuple(row) for row in s.execute(query.order_by(Decision.id))]


def refusals(db: str | os.PathLike[str]) -> list[dict]:
    with open_store(db) as store, store.read() as s:
        return list(s.scalars(select(AuditEvent.detail).where(AuditEvent.action == "access_refused")))


@pytest.fixture(params=["sqlite", "postgresql"])
def project_db(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "postgresql":
        return request.getfixturevalue("pg_url")
    return os.fspath(tmp_path / "team.db")


def test_sign_in_screen_as_yourself_and_the_gates(project_db: str, tmp_path: Path) -> None:
    build_project(project_db)
    suffix = "" if "://" not in project_db else "-postgresql"
    with identity_provider(tmp_path) as issuer, team_server(project_db, issuer, tmp_path) as url, browser() as chromium:
        # signed out: the sign-in page and nothing of the project
        visitor = new_page(chromium)
        for path in ("", "/setup", "/history", "/export", f"/?reviewer={ANN}"):
            visitor.goto(url + path)
            visitor.get_by_role("button", name="Sign in").wait_for()
            html = visitor.content()
            assert PROJECT not in html and "Record " not in main_text(visitor)
            assert (
                not visitor.locator("[data-testid='stSidebar']").count()
                or ANN not in visitor.locator("[data-testid='stSidebar']").inner_text()
            )
        assert "stSidebarNav" not in visitor.content()
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        visitor.screenshot(path=str(ARTIFACTS / f"sign-in{suffix}.png"))

        # a listed reviewer (email in another case) screens three records, recorded in their name
        bob = new_page(chromium)
        sign_in(bob, url, BOB)
        bob.get_by_text("Signed in as").first.wait_for()
        assert BOB in bob.locator("[data-testid='stSidebar']").inner_text()
        seen = screen(bob, ["include", "exclude", "exclude"])
        assert decisions_of(project_db) == [
            (seen[0], "include", BOB),
            (seen[1], "exclude", BOB),
            (seen[2], "exclude", BOB),
        ]

        # a reviewer cannot open the settings, nor the search and import page
        for path, title in (("/setup", "Setup"), ("/search", "Search & import")):
            bob.goto(url + path)
            bob.get_by_text(f"Only the project's owners open {title}").wait_for()
            assert not bob.locator("[data-testid='stForm']").count()
        # ... nor sign in as someone else through the address
        bob.goto(url + f"/?reviewer={ANN}")
        shown_record(bob)
        assert f"Signed in as {BOB}" in bob.locator("[data-testid='stSidebar']").inner_text().replace("\n", " ")

        # an identity on no reviewer of the project is refused, with nothing of the project
        eve = new_page(chromium)
        sign_in(eve, url, EVE)
        eve.get_by_text("Not on this project", exact=True).wait_for()
        eve.get_by_text("eve@elsewhere.example is not on this project's list").wait_for()
        eve.get_by_role("button", name="Sign out").wait_for()  # the page's last element: all of it is drawn
        assert PROJECT not in eve.content() and "Record " not in main_text(eve)
        eve.screenshot(path=str(ARTIFACTS / f"refused{suffix}.png"))

        # the owner opens Setup
        ann = new_page(chromium)
        sign_in(ann, url, ANN)
        ann.goto(url + "/setup")
        ann.locator("[data-testid='stForm']").first.wait_for()

    assert len(decisions_of(project_db)) == 3
    refused = refusals(project_db)
    assert any(r.get("claimed", {}).get("email") == "eve@elsewhere.example" for r in refused), refused


def test_two_reviewers_at_once_in_blind_dual_mode_never_see_each_others_votes(project_db: str, tmp_path: Path) -> None:
    build_project(project_db, blind=True)
    with identity_provider(tmp_path) as issuer, team_server(project_db, issuer, tmp_path) as url, browser() as chromium:
        ann, bob = new_page(chromium), new_page(chromium)
        sign_in(ann, url, ANN)
        sign_in(bob, url, BOB)
        shown_record(ann), shown_record(bob)
        by_bob = screen(bob, ["include", "exclude", "include"], never=ANN)
        by_ann = screen(ann, ["exclude", "exclude", "include"], never=BOB)
        by_bob += screen(bob, ["exclude"], never=ANN)
        for page, other in ((ann, BOB), (bob, ANN)):
            page.get_by_role("link", name="History").click()
            page.get_by_text("Your decisions").first.wait_for()
            page.get_by_text("Decision to change").first.wait_for()  # drawn after the list
            assert other not in main_text(page).lower()

    rows = decisions_of(project_db)
    assert set(by_ann) & set(by_bob), "the second reviewer was shown none of the first one's records"
    assert sorted(r for r, _, who in rows if who == BOB) == sorted(by_bob)
    assert sorted(r for r, _, who in rows if who == ANN) == sorted(by_ann)
    # the library, asked as each of them, hides the other's vote on a record only one of them decided
    with open_store(project_db) as store:
        with store.read() as s:
            ids = dict(s.execute(select(Reviewer.name, Reviewer.id)).all())
        for name, other in ((ANN, BOB), (BOB, ANN)):
            view = store.acting_as(Identity(ids[name], name, "reviewer"))
            only_other = set(by_bob if other == BOB else by_ann) - set(by_ann if other == BOB else by_bob)
            for record in only_other:
                assert all(e.reviewer != other for e in visible_decisions(view, record, viewer=name))
