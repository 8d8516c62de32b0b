"""Interface languages (issue 9.1): catalogues, the language of a request, the switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import pytest
from babel.messages.pofile import read_po
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from tocsin.authorities import accounts
from tocsin.authorities import services as authorities
from tocsin.core.db import make_engine
from tocsin.core.migrate import upgrade
from tocsin.core.settings import Settings
from tocsin.web import i18n
from tocsin.web.app import create_app
from weblogin import csrf_of

PASSWORD = "correct horse battery staple"
TEMPLATES = Path(i18n.__file__).parent / "templates"
#: Templates whose every user-facing word goes through gettext (issue 9.1, in order).
TRANSLATED_TEMPLATES = (
    "base.html", "login.html", "login_totp.html", "totp_enrol.html", "account.html",
    "dashboard.html", "error.html", "_template_cards.html", "_cap_import_form.html",
    "contacts.html", "contacts_import.html", "_contact_errors.html", "groups.html",
)


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    from test_web import seed

    eng = make_engine(f"sqlite:///{tmp_path / 'i18n.db'}")
    upgrade(eng)
    seed(eng)  # user "op" (province 25000)
    authorities.create_user(eng, "nl_user", PASSWORD, "25000", role="viewer")
    return eng


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url))
    with TestClient(create_app(engine, start_worker=False, settings=settings)) as c:
        yield c


def _lang(html: str) -> str:
    m = re.search(r'<html lang="([a-z]+)"', html)
    assert m, "no <html lang>"
    return m.group(1)


def _log_in(client: TestClient, username: str) -> None:
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": PASSWORD,
                                    "environment": "simulation", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303, r.text


# ----------------------------------------------------------------------------- choice


def test_english_when_nothing_asks(client: TestClient) -> None:
    r = client.get("/login")
    assert _lang(r.text) == "en"
    assert "Log in to Tocsin" in r.text


@pytest.mark.parametrize(("header", "lang", "word"), [
    ("de", "de", "Benutzername"),
    ("de-BE,de;q=0.9,en;q=0.5", "de", "Passwort"),
    ("fr-BE,fr;q=0.9", "fr", "Nom d’utilisateur"),
    ("nl-BE", "nl", "Gebruikersnaam"),
    ("en;q=0.4,nl;q=0.8", "nl", "Wachtwoord"),
    ("es,it", "en", "Username"),
])
def test_accept_language_chooses(client: TestClient, header: str, lang: str, word: str) -> None:
    html = client.get("/login", headers={"Accept-Language": header}).text
    assert _lang(html) == lang
    assert word in html


def test_login_page_in_german_has_german_words(client: TestClient) -> None:
    html = client.get("/login", headers={"Accept-Language": "de"}).text
    for word in ("Bei Tocsin anmelden", "Benutzername", "Passwort", "Umgebung", "Anmelden"):
        assert word in html
    assert "Log in to Tocsin" not in html


def test_query_lang_is_remembered(client: TestClient) -> None:
    assert _lang(client.get("/login?lang=nl", headers={"Accept-Language": "de"}).text) == "nl"
    # remembered in the session cookie, over Accept-Language
    assert _lang(client.get("/login", headers={"Accept-Language": "de"}).text) == "nl"
    # an unknown ?lang= changes nothing
    assert _lang(client.get("/login?lang=xx").text) == "nl"


def test_query_lang_survives_login(client: TestClient) -> None:
    client.get("/login?lang=fr")
    _log_in(client, "op")
    html = client.get("/").text
    assert _lang(html) == "fr"
    assert "Nouvelle alerte" in html


def test_user_setting_wins_over_browser_and_session(client: TestClient, engine: Engine) -> None:
    client.get("/login?lang=fr")
    _log_in(client, "nl_user")
    token = csrf_of(client.get("/account").text)
    r = client.post("/account/language", data={"language": "nl", "csrf_token": token},
                    follow_redirects=False)
    assert r.status_code == 303
    html = client.get("/", headers={"Accept-Language": "de"}).text
    assert _lang(html) == "nl"
    assert "Campagnes" in html and "Afmelden" in html
    # an explicit ?lang= applies to the page that asks for it
    assert _lang(client.get("/?lang=de").text) == "de"


def test_user_setting_is_refused_when_unknown(engine: Engine) -> None:
    user_id = authorities.create_user(engine, "x_user", PASSWORD, "25000", role="viewer")
    uid = user_id if isinstance(user_id, int) else user_id.id
    with pytest.raises(ValueError, match="language"):
        accounts.set_language(engine, uid, "es")


def test_language_switch_on_every_page(client: TestClient) -> None:
    html = client.get("/login", headers={"Accept-Language": "fr"}).text
    for code in i18n.LANGUAGES:
        assert re.search(rf'<a href="[^"]*lang={code}"[^>]*hreflang="{code}"', html), code
    _log_in(client, "op")
    html = client.get("/nowhere").text  # the error page too
    assert 'hreflang="de"' in html


def test_error_page_translated(client: TestClient) -> None:
    _log_in(client, "op")
    html = client.get("/campaigns/999999?lang=de").text
    assert "Zurück zu den Kampagnen" in html


def test_accepted_language_parser() -> None:
    assert i18n.accepted_language("fr;q=0, de") == "de"
    assert i18n.accepted_language("*") is None
    assert i18n.accepted_language("nl;q=abc, fr") == "fr"
    assert i18n.accepted_language(None) is None


def test_dates_and_amounts_by_locale() -> None:
    import datetime as dt

    moment = dt.datetime(2026, 7, 1, 8, 5, tzinfo=dt.UTC)  # 10:05 in Brussels (CEST)
    assert i18n.format_brussels(moment, "en", "%Y-%m-%d %H:%M") == "2026-07-01 10:05"
    assert i18n.format_brussels(moment, "fr", "%Y-%m-%d %H:%M") == "1/07/26 10:05"
    assert i18n.format_brussels(moment, "de", "%H:%M") == "10:05"
    assert "juli" in i18n.format_brussels(moment, "nl", "%A %d %B %Y at %H:%M")
    assert i18n.format_eur("1234.5", "en") == "1,234.500 €"
    assert i18n.format_eur("1234.5", "nl") == "1.234,500\u00a0€"


# ----------------------------------------------------------------------------- catalogues


@pytest.mark.parametrize("lang", ["fr", "nl", "de"])
def test_every_message_is_translated(lang: str) -> None:
    with i18n.po_path(lang).open("rb") as fh:
        catalog = read_po(fh, locale=lang)
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as fh:
        template = read_po(fh)
    wanted = {m.id for m in template if m.id}
    have = {m.id for m in catalog if m.id and m.string and not m.fuzzy}
    assert wanted - have == set(), f"{lang}: untranslated or missing messages"


def test_catalogue_template_is_current() -> None:
    """The committed messages.pot holds every message the code and templates use
    (run `make messages` after changing them)."""
    from babel.messages.extract import extract_from_dir

    method_map = [("src/tocsin/**.py", "python"), ("src/tocsin/web/templates/**.html", "jinja2")]
    root = Path(i18n.__file__).parents[3]
    found = {msg[2] if isinstance(msg[2], str) else msg[2][0]
             for msg in extract_from_dir(
                 str(root), method_map, options_map={
                     "src/tocsin/web/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
                 keywords={"_": None, "gettext": None, "translate": (2,)})}
    with (i18n.LOCALE_DIR / "messages.pot").open("rb") as fh:
        template = {m.id if isinstance(m.id, str) else m.id[0] for m in read_po(fh) if m.id}
    assert found - template == set()


class _TextNodes(HTMLParser):
    """Collects the text nodes and the user-facing attributes of a template, with the
    Jinja2 expressions, statements and comments removed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style", "code"):
            self._skip += 1
        for name, value in attrs:
            if name in ("title", "aria-label", "placeholder", "alt") and value:
                self.texts.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style", "code") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.texts.append(data)


_TRANS_BLOCK = re.compile(r"{%-?\s*trans\b.*?{%-?\s*endtrans\s*-?%}", re.S)
_JINJA = re.compile(r"{{.*?}}|{%.*?%}|{#.*?#}", re.S)
_ALLOWED = {"Tocsin", "SIMULATION", "LIVE"}  # the product's name and the banners' marks


@pytest.mark.parametrize("name", TRANSLATED_TEMPLATES)
def test_translated_templates_have_no_bare_english(name: str) -> None:
    source = (TEMPLATES / name).read_text(encoding="utf-8")
    source = _JINJA.sub(" ", _TRANS_BLOCK.sub(" ", source))
    parser = _TextNodes()
    parser.feed(source)
    bare = []
    for text in parser.texts:
        words = [w for w in re.findall(r"[A-Za-z][A-Za-z'’-]+", text) if w not in _ALLOWED]
        if words:
            bare.append(text.strip())
    assert bare == [], f"{name}: text outside {{% trans %}} / _(): {bare}"
