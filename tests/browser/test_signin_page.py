"""How the page gets its token: a link's token only after the person confirms the account (login CSRF /
session fixation), the sign-in URL round trip, and a token handed over by the embedding application."""

from __future__ import annotations

from urllib.parse import urlencode

from gpu_export import Client

from .conftest import Page


def whoami(browser) -> str:
    return browser.text("#whoami")


def test_a_link_token_is_adopted_only_after_confirmation(page, browser, stack):
    page.open()
    mine = browser("evaluate", expression="localStorage.getItem('exportToken')")
    me = whoami(browser)
    with Client(stack.url) as attacker:
        other = attacker.sign_up_anonymous()  # e.g. an attacker's account
    link = f"{stack.url}/#" + urlencode({"token": other.token, "video": f"videos/raw/{other.user_id}/x/a.mp4"})

    browser("goto", url="about:blank")  # the link opens as a new document (a fragment-only change would not)
    browser("goto", url=link)
    browser.wait_for("#signin-link")
    assert other.user_id in browser.text("#signin-link-account")
    assert "You are signed in as" in browser.text("#signin-link")
    browser.screenshot("signin-link-confirm.png")
    browser("click", selector="#signin-link-reject")
    browser.wait_for("body[data-ready='true']")
    assert browser("evaluate", expression="localStorage.getItem('exportToken')") == mine
    assert whoami(browser) == me and "#" not in browser("evaluate", expression="location.href")
    assert "a.mp4" not in browser.text("#videos")

    browser("goto", url="about:blank")
    browser("goto", url=link)
    browser("click", selector="#signin-link-accept")
    browser.wait_for("body[data-ready='true']")
    assert browser("evaluate", expression="localStorage.getItem('exportToken')") == other.token
    assert other.user_id in whoami(browser)
    assert browser.text("#videos").startswith("a.mp4")


def test_a_link_for_the_account_already_signed_in_keeps_it(page, browser, stack):
    """No question to ask, and nothing lost: the page stays signed in as the same person."""
    page.open()
    mine = browser("evaluate", expression="localStorage.getItem('exportToken')")
    me = whoami(browser)
    browser("goto", url="about:blank")
    browser("requests")  # forget earlier requests
    browser("goto", url=f"{stack.url}/#" + urlencode({"token": mine}))
    browser.wait_for("body[data-ready='true']")
    assert browser("evaluate", expression="document.querySelector('#signin-link')") is None
    assert whoami(browser) == me
    assert browser("evaluate", expression="localStorage.getItem('exportToken')") == mine
    assert browser("requests").count("POST /api/auth/anonymous") == 0


def test_sign_in_url_round_trip(browser, prod_stack, identity_provider):
    """Production: no anonymous accounts; the page offers the sign-in URL, the provider sends the person
    back with #id_token and the state the page sent, and the page is signed in (no question asked)."""
    browser("newContext")
    page = Page(browser, prod_stack)
    browser("requests")  # forget earlier pages' requests
    browser("newPage", url=f"{prod_stack.url}/")
    browser.wait_for("#signin")
    assert browser("requests").count("POST /api/auth/anonymous") == 0
    browser("click", selector="#signin")
    browser.wait_for("body[data-ready='true']")
    assert whoami(browser) == "Signed in as alice@example.test"
    assert browser("evaluate", expression="document.querySelector('#signin-link')") is None
    with page.api() as api:
        assert api.whoami().user_id == "alice"


def test_a_forged_sign_in_redirect_still_asks(browser, prod_stack, identity_provider):
    """#id_token with a state this tab never sent is a link like any other: confirmation first."""
    browser("newContext")
    token = identity_provider.token("mallory")
    browser("newPage", url=f"{prod_stack.url}/#" + urlencode({"id_token": token, "state": "made-up"}))
    browser.wait_for("#signin-link")
    assert "mallory@example.test" in browser.text("#signin-link-account")
    browser("click", selector="#signin-link-reject")
    browser.wait_for("#signin")  # not signed in
    assert browser("evaluate", expression="localStorage.getItem('exportToken')") is None


def test_the_embedding_application_hands_over_the_token(browser, prod_stack, identity_provider):
    browser("newContext")
    browser("newPage", url=f"{identity_provider.url}/embed?sub=carol")
    browser.wait_for('#whoami:text-matches("^Signed in")', frame="#export")
    assert browser("frameText", frame="#export", selector="#whoami") == "Signed in as carol@example.test"
