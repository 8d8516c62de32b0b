"""Interface languages (issue 9.1): catalogues, the language of a request, the switch."""

from __future__ import annotations

import html
import json
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
    "compose.html", "_compose_i18n.html", "_delete_draft.html",
    "campaign.html", "_report_final.html", "_monitor_summary.html",
    "monitor.html", "monitor_list.html", "governance.html", "templates.html",
    "template_form.html", "users_admin.html", "gateway_admin.html", "invitation.html",
    "unsubscribe.html",
    "contacts.html", "contacts_import.html", "_contact_errors.html", "groups.html",
    "portal_base.html", "_portal_words.html", "portal_register.html",
    "portal_verify.html", "portal_code.html", "portal_profile.html", "portal_me.html",
    "portal_deleted.html",
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
    # a plural entry needs every form of the language (French has three in CLDR: a
    # count of 3 picks the third, and an empty one falls back to the English msgid)
    have = {m.id for m in catalog if m.id and not m.fuzzy
            and (all(m.string) if isinstance(m.string, tuple) else m.string)}
    assert wanted - have == set(), f"{lang}: untranslated or missing messages"


#: What is not French prose in a msgstr: code samples, URLs, times (10:30, HH:MM),
#: placeholders (%(name)s, {name}) whose value may start with anything.
_NOT_PROSE = re.compile(r"<code>.*?</code>|\b[a-z][a-z0-9+.-]*://\S+|\b(?:mailto|tel):\S+"
                        r"|\w:\w|%\([^)]*\)[sd]|\{[^}]*\}")


def test_french_double_punctuation_has_its_space() -> None:
    """French typography puts a space before : ; ? ! (Imprimerie nationale, Lexique des
    règles typographiques). The catalogue writes it as a plain space (U+0020, turned into
    a no-break one nowhere else: SMS texts stay GSM-7); a no-break U+00A0 or U+202F is
    accepted. Every French msgstr has one."""
    with i18n.po_path("fr").open("rb") as fh:
        catalog = read_po(fh, locale="fr")
    wrong = []
    for m in catalog:
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        for text in filter(None, strings if m.id else ()):
            prose = _NOT_PROSE.sub("X", text)
            if re.search(r"[^\s\u00a0\u202f][:;?!]", prose):
                wrong.append(text)
    assert wrong == [], "French msgstr without the space before : ; ? !"


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
                 keywords={"_": None, "gettext": None, "translate": (2,), "N_": None,
                           "NP_": ((1, "c"), 2)})}
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
_ALLOWED = {"Tocsin", "SIMULATION", "LIVE", "SMS", "CAP"}  # names, the banners' marks


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


# ----------------------------------------------------------------------------- scripts

STATIC = TEMPLATES.parent / "static"
#: Scripts whose every user-facing word comes from the template's JSON dictionary.
TRANSLATED_SCRIPTS = ("compose.js", "message-tools.js")
_JS_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"|\'(?:[^\'\\\n]|\\.)*\'|`(?:[^`\\]|\\.)*`')
_JS_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_JS_NOT_WORDS = {"Enter", "Home", "End", "ArrowRight", "ArrowLeft", "Content-Type", "Shift"}


def _js_bare_english(source: str) -> list[str]:
    """String literals of a script that read as English words: two words separated by a
    space ("Send now"), or one capitalised word ("Undo"); selectors, paths, event names
    and keys are not words."""
    bare = []
    for m in _JS_STRING.finditer(_JS_COMMENT.sub(" ", source)):
        text = re.sub(r"\$\{[^}]*\}", " ", m.group(0)[1:-1])
        phrase = (re.search(r"[A-Za-z]{2,}[,.:!?]?\s+[A-Za-z]{2,}", text)
                  and not re.search(r"[\[\]=#>]|^\s*[.#]?[\w-]+(\s+[.#]?[\w-]+)*\s*$", text))
        word = (re.fullmatch(r"[A-Z][a-z]+(?: [a-z]+)*[.:]?", text.strip())
                and text.strip() not in _JS_NOT_WORDS)
        if phrase or word:
            bare.append(text)
    return bare


def test_the_script_check_finds_english() -> None:
    assert _js_bare_english('el("p", {}, "Sent now."); x = `Error ${n}`; t("undo")') == [
        "Sent now.", "Error  "]
    assert _js_bare_english('q("[data-x=\\"a b\\"]"); on("pm:create"); k === "Enter"') == []


@pytest.mark.parametrize("name", TRANSLATED_SCRIPTS)
def test_translated_scripts_have_no_bare_english(name: str) -> None:
    bare = _js_bare_english((STATIC / name).read_text(encoding="utf-8"))
    assert bare == [], f"{name}: words outside the compose-i18n dictionary: {bare}"


def test_every_script_word_is_in_the_dictionary() -> None:
    """Each t("key") / tNodes("key") of the composer's scripts has its entry in
    _compose_i18n.html (a missing one would show the key to the operator)."""
    keys = set(re.findall(r'^\s*"(\w+)":', (TEMPLATES / "_compose_i18n.html").read_text(
        encoding="utf-8"), re.M))
    used: set[str] = set()
    for name in TRANSLATED_SCRIPTS:
        source = (STATIC / name).read_text(encoding="utf-8")
        for first in re.findall(r'\bt(?:Nodes)?\(([^,()]*)', source):  # incl. a ? "b" : "c"
            used |= set(re.findall(r'(?<![=!]== )"(\w+)"', first))
    assert used - keys == set()


def test_composer_in_german_has_no_english_left(client: TestClient) -> None:
    """The composer in German: the visible words and the scripts' dictionary."""
    import json

    _log_in(client, "op")
    html = client.get("/campaigns/new?lang=de").text
    for word in ("Gebiet", "Gemeinde nach Namen", "Art der Meldung", "Kanäle", "Schätzung",
                 "Simulation starten…", "Ein Kreis", "GeoJSON einfügen"):
        assert word in html, word
    m = re.search(r'<script type="application/json" id="compose-i18n">(.*?)</script>', html, re.S)
    assert m
    words = json.loads(m.group(1))
    assert words["locale"] == "de-BE"
    assert words["segments"] == {"one": "{n} Segment", "other": "{n} Segmente"}
    assert words["no_estimate"] == "Keine Schätzung: {reason}"
    for text in ("New alert", "Type of message", "Whole municipality", "Launch simulation"):
        assert text not in html, text


def test_language_names_are_lowercase_in_french_sentences(client: TestClient) -> None:
    """Issue 10 trial: "Texte en Néerlandais"; in French running text language names take
    no capital ("Texte en néerlandais"), while a name alone (a tab) keeps it."""
    import json

    from tocsin.core.errors import InputError
    from tocsin.core.i18n import N_
    from tocsin.web.i18n import error_text

    _log_in(client, "op")
    html = client.get("/campaigns/new?lang=fr").text
    assert "Texte en néerlandais" in html and "Texte en Néerlandais" not in html
    assert '<span class="lang-tab-name">Néerlandais</span>' in html
    m = re.search(r'<script type="application/json" id="compose-i18n">(.*?)</script>', html, re.S)
    assert m
    words = json.loads(m.group(1))
    assert words["lang_names_text"]["nl"] == "néerlandais"
    assert words["lang_names"]["nl"] == "Néerlandais"
    error = InputError("text.nl", N_("the %(lang_name)s text (text.%(lang)s) is empty"),
                       lang="nl", lang_name="Dutch")
    assert "néerlandais" in error_text(error, "fr")


# ----------------------------------------------------------------------------- acceptance
# Issue 9: "Switching to German changes every visible word of the dashboard, composer,
# monitor and report (a test compares the rendered text with the catalogue: no English
# left)". Every word of every visible text node (and of the user-facing attributes) of
# these pages, rendered in German with a sending and a finished campaign, must be a word
# of a German msgstr, of Babel's German dates, or of the data (names, identifiers).

#: The pages checked in German: (name, URL; ``{sending}``/``{finished}`` are campaign ids).
#: The composer joins with one line: ("composer", "/campaigns/new").
GERMAN_PAGES = [
    ("dashboard", "/"),
    ("composer", "/campaigns/new"),
    ("monitor list", "/monitor"),
    ("monitor, sending", "/monitor/{sending}"),
    ("monitor, finished", "/monitor/{finished}?large=1"),
    ("campaign, sending", "/campaigns/{sending}"),
    ("report page", "/campaigns/{finished}"),
    ("final report", "/campaigns/{finished}/final"),
    ("report PDF", "/campaigns/{finished}/report.pdf"),
]
_VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
         "track", "wbr"}
_WORD = re.compile(r"[^\W\d_]+")
_PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|\{\w+\}|<[^>]+>")


class _VisibleText(HTMLParser):
    """The visible text and user-facing attributes of a rendered page in ``lang``,
    leaving out scripts, styles and elements marked in another language (``lang=``)."""

    def __init__(self, lang: str) -> None:
        super().__init__(convert_charrefs=True)
        self.lang = lang
        self.texts: list[str] = []
        self._stack: list[tuple[str, bool]] = []

    def _hidden(self) -> bool:
        return any(skip for _, skip in self._stack)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        given = dict(attrs)
        other = bool(given.get("lang")) and not str(given["lang"]).startswith(self.lang)
        skip = tag in ("script", "style") or other
        if not (self._hidden() or skip):
            for name in ("title", "aria-label", "placeholder", "alt"):
                if given.get(name):
                    self.texts.append(str(given[name]))
            if tag == "input" and given.get("type") in ("submit", "button") and given.get("value"):
                self.texts.append(str(given["value"]))
        if tag not in _VOID:
            self._stack.append((tag, skip))

    def handle_endtag(self, tag: str) -> None:
        for i in range(len(self._stack) - 1, -1, -1):
            if self._stack[i][0] == tag:
                del self._stack[i:]
                return

    def handle_data(self, data: str) -> None:
        if not self._hidden() and data.strip():
            self.texts.append(data)


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(_PLACEHOLDER.sub(" ", text))}


def _german_words() -> set[str]:
    """Every word of the German catalogue's msgstrs, of Babel's German month, day and
    duration names, and the languages' own names."""
    import datetime as dt

    from babel.dates import format_datetime, format_timedelta, get_day_names, get_month_names

    with i18n.po_path("de").open("rb") as fh:
        catalog = read_po(fh, locale="de")
    words: set[str] = set()
    for m in catalog:
        for s in (m.string if isinstance(m.string, tuple) else (m.string,)):
            words |= _words(s or "")
    for width in ("wide", "abbreviated"):
        words |= {w.lower() for w in get_month_names(width, locale="de_BE").values()}
        words |= {w.lower() for w in get_day_names(width, locale="de_BE").values()}
    for seconds in (1, 2, 60, 120, 3600, 7200, 86400, 172800):
        for fmt in ("long", "short", "narrow"):
            words |= _words(format_timedelta(dt.timedelta(seconds=seconds), locale="de",
                                             format=fmt))
    for month in (1, 7):  # the time zone's names, winter and summer (MEZ, MESZ)
        moment = dt.datetime(2026, month, 1, 12, tzinfo=i18n.BRUSSELS)
        words |= _words(format_datetime(moment, "z", tzinfo=i18n.BRUSSELS, locale="de_BE"))
    for name in i18n.LANGUAGE_NAMES.values():
        words |= _words(name)
    return words | {w.lower() for w in _ALLOWED}


@pytest.fixture
def campaigns(engine: Engine, client: TestClient) -> dict[str, str]:
    """Two exercises to Wavre by SMS, e-mail and CAP, launched by "op": one sending
    (some SMS sent, one failed), one finished."""
    import sqlalchemy as sa

    from tocsin.core.db import table, transaction
    from tocsin.dispatch.models import Delivery
    from tocsin.subscribers.importer import import_subscribers

    lines = ["subscriber_id,language,mobile,email,lat,lon"]
    for i in range(6):
        lines.append(f"S{i:03d},fr,+324701234{i:02d},person{i}@example.org,50.7,4.55")
    assert import_subscribers(engine, ("\n".join(lines) + "\n").encode()).ok
    _log_in(client, "op")
    token = csrf_of(client.get("/").text)
    ids = {}
    for name in ("finished", "sending"):
        body = {"texts": {"fr": "Exercice: restez chez vous."},
                "channels": ["sms", "email", "cap"], "municipality_nis": "25112",
                "kind": "exercise"}
        r = client.post("/api/campaigns", json=body, headers={"X-CSRF-Token": token})
        assert r.status_code == 201, r.text
        ids[name] = r.json()["campaign_id"]
    d = table(Delivery)
    now = dt_now()
    with transaction(engine) as s:
        for name, cid in ids.items():
            rows = [i for (i,) in s.execute(sa.select(d.c.id).where(d.c.campaign_id == cid)
                                            .order_by(d.c.id))]
            done = rows if name == "finished" else rows[: len(rows) // 2]
            s.execute(d.update().where(d.c.id.in_(done[1:])).values(
                state="delivered", sent_at=now, final_at=now))
            s.execute(d.update().where(d.c.id == done[0]).values(
                state="failed", final_at=now, error="SMSC 0x0000000B"))
        s.execute(sa.text("UPDATE campaign SET status = 'finished', finished_at = :t "
                          "WHERE id = :c"), {"t": now, "c": ids["finished"]})
    return ids


def dt_now() -> object:
    import datetime as dt

    return dt.datetime.now(dt.UTC)


def _page_texts(client: TestClient, url: str) -> list[str]:
    r = client.get(url, headers={"Accept-Language": "de"})
    assert r.status_code == 200, (url, r.status_code)
    if r.headers["content-type"].startswith("application/pdf"):
        import io

        from pypdf import PdfReader

        return [p.extract_text() for p in PdfReader(io.BytesIO(r.content)).pages]
    assert url.endswith("/final") or _lang(r.text) == "de", url
    parser = _VisibleText("de")
    parser.feed(r.text)
    return parser.texts


def _data_words(engine: Engine, ids: dict[str, str]) -> set[str]:
    """The words that are data, not interface: names of places, people and the
    authority, identifiers, the SMSC's failure reason."""
    from tocsin.campaigns.reports import campaign_report
    from tocsin.core.settings import Settings

    # language codes (FR), the SMSC's reason, the unit of the map's scale (km)
    words = _words("Wavre Brabant wallon Olivia Operator op SMSC 0x0000000B km")
    words |= set(i18n.LANGUAGES)
    # the composer's per-language fields show the default CAP event in that field's
    # language ("Standard: Alerte" in the French field): message content, not interface
    from tocsin.campaigns import rules
    words |= {w for k in rules.KINDS for lang in ("fr", "nl", "de", "en")
              for w in _words(rules.kind_label(k, lang))}
    for cid in ids.values():
        report = campaign_report(engine, cid, Settings(), public_url="http://testserver")
        words |= _words(f"{cid} {report['cap_identifier']} {report['area_name']}")
    return words


@pytest.mark.parametrize(("name", "url"), GERMAN_PAGES, ids=[n for n, _ in GERMAN_PAGES])
def test_german_pages_have_no_english_left(client: TestClient, engine: Engine,
                                           campaigns: dict[str, str], name: str,
                                           url: str) -> None:
    client.get("/?lang=de")
    known = _german_words() | _data_words(engine, campaigns)
    texts = _page_texts(client, url.format(**campaigns))
    assert texts, name
    strangers = sorted({w for t in texts for w in _words(t)} - known)
    assert strangers == [], f"{name}: words that are not German: {strangers}"


def test_the_german_check_finds_english(client: TestClient, engine: Engine,
                                        campaigns: dict[str, str]) -> None:
    """The check bites: the same page in English has many words German lacks."""
    known = _german_words() | _data_words(engine, campaigns)
    client.get("/?lang=en")
    r = client.get(f"/campaigns/{campaigns['finished']}")
    parser = _VisibleText("en")
    parser.feed(r.text)
    strangers = {w for t in parser.texts for w in _words(t)} - known
    assert {"channel", "delivered", "throughput"} <= strangers


# ----------------------------------------------------------------------------- service errors
# docs/decisions/0018: services raise errors with a code, an English template and params;
# the web translates the template once per language.


def test_input_error_keeps_english_reason_and_translates_its_template() -> None:
    from tocsin.authorities.governance import GovernanceError
    from tocsin.core.i18n import N_

    exc = GovernanceError("trainer", N_("at most %(max)s characters"), code="too_long", max=200)
    assert (exc.field, exc.code, exc.params) == ("trainer", "too_long", {"max": 200})
    assert exc.reason == "at most 200 characters" and str(exc) == "trainer: at most 200 characters"
    assert i18n.error_text(exc, "de") == "höchstens 200 Zeichen"
    assert i18n.error_text(exc, "fr") == "au plus 200 caractères"
    assert i18n.error_text(exc, "en") == "at most 200 characters"
    plain = ValueError("no template")
    assert i18n.error_text(plain, "de") == "no template"


def test_policy_refusal_is_translated_with_its_role() -> None:
    from tocsin.authorities.policy import Action, Actor, AuthorityFacts, Target, decide

    authority = AuthorityFacts(id="25000", kind="province", parent_id=None, agreement_type=1)
    viewer = Actor(username="v", role="viewer", authority=authority)
    decision = decide(viewer, Action.CAMPAIGN_LAUNCH, Target(authority=authority,
                                                             environment="simulation"))
    assert not decision and decision.reason == "the viewer role cannot send" or \
        "viewer" in decision.reason
    assert dict(decision.params) == {"role": "viewer"}
    german = i18n.error_text(decision, "de")
    assert "Leser" in german and "viewer" not in german



def _api_in(client: TestClient, lang: str) -> dict[str, str]:
    """Log in as "op" (province 25000), choose ``lang``; the API headers."""
    from weblogin import session_csrf

    token = session_csrf(client, "op", PASSWORD)
    client.get(f"/?lang={lang}")
    return {"X-CSRF-Token": token}


def test_estimate_warnings_in_the_operators_language(client: TestClient) -> None:
    """docs/decisions/0018: an estimate's warnings keep their code and field and read in
    the operator's language (the CLI and the logs keep English)."""
    h = _api_in(client, "de")
    circle = client.post("/api/areas/circle", json={"center": "Wavre", "radius_km": 20},
                         headers=h)
    assert circle.status_code == 200, circle.text
    body = {"texts": {"fr": "Exercice"}, "channels": ["sms", "email"], "kind": "exercise",
            "area_geojson": circle.json()["geometry"]}
    r = client.post("/api/campaigns/estimate", headers=h, json=body)
    assert r.status_code == 200, r.text
    warnings = {w["code"]: w for w in r.json()["warnings"]}
    cut = warnings["area_cut"]
    assert cut["field"] == "area" and cut["km2"] > 0
    assert cut["message"].startswith("Das Gebiet wurde an der Grenze von ")
    assert "werden nicht alarmiert" in cut["message"]
    assert "template" not in cut and "params" not in cut
    for w in warnings.values():  # no English left in any warning
        assert " the " not in w["message"] and "will not" not in w["message"], w
    # The same estimate in English keeps the English words.
    client.get("/?lang=en")
    r = client.post("/api/campaigns/estimate", headers=h, json=body)
    english = {w["code"]: w for w in r.json()["warnings"]}
    assert english["area_cut"]["message"].startswith("The area was cut at the border of ")
    assert set(english) == set(warnings)


def test_area_errors_in_dutch_keep_the_english_reason(client: TestClient) -> None:
    h = _api_in(client, "nl")
    r = client.post("/api/areas/circle", json={"center": "4.24, 50.73", "radius_km": 1},
                    headers=h)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "circle.center"
    assert error["reason"].endswith("is outside Belgium; write the latitude first: 50.73, 4.24")
    assert error["message"] == ("4.24, 50.73 ligt buiten België; schrijf eerst de "
                                "breedtegraad: 50.73, 4.24")
    r = client.post("/api/areas/circle", json={"center": "Wavre", "radius_km": 0},
                    headers=h)
    assert r.status_code == 422 and "de straal moet tussen" in r.json()["error"]["message"]
    r = client.post("/api/areas/geojson", headers=h,
                    json={"geojson": '{"type": "Point", "coordinates": [4.2, 50.7]}'})
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["field"] == "geojson" and error["reason"].startswith("must be a Polygon")
    assert error["message"].startswith("moet een Polygon of MultiPolygon zijn, geen Point")


def test_cut_warning_template_is_translated_in_every_language() -> None:
    from tocsin.geo.areas import cut_warning

    w = cut_warning(12.5, 10.0, "Beersel")
    assert w is not None
    assert i18n.warning_text(w, "fr")["message"] == (
        "La zone a été coupée à la limite de Beersel : 2.5 km² (20% de la zone) se trouvent "
        "en dehors et ne seront pas alertés.")
    assert i18n.warning_text(w, "nl")["message"].startswith("Het gebied werd afgesneden")
    assert i18n.warning_text(w, "en")["message"] == w["message"]
    small = cut_warning(10000.0, 9999.0, "Belgium")
    assert small is not None and "minder dan 1% van" in i18n.warning_text(small, "nl")["message"]


def test_update_refusal_in_french_keeps_the_english_reason(client: TestClient) -> None:
    """A follow-up of a cancelled alert is refused (rules.follow_up_refusal): the API's
    reason stays English, its message is French."""
    h = _api_in(client, "fr")
    r = client.post("/api/campaigns", headers=h, json={
        "texts": {"fr": "Exercice."}, "channels": ["cap"], "municipality_nis": "25112",
        "kind": "exercise"})
    assert r.status_code == 201, r.text
    campaign_id = r.json()["campaign_id"]
    assert client.post(f"/api/campaigns/{campaign_id}/cancel", headers=h,
                       json={}).status_code == 200
    r = client.post(f"/api/campaigns/{campaign_id}/update", headers=h,
                    json={"texts": {"fr": "Mise à jour."}})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "campaign_id"
    assert error["reason"] == (f"campaign {campaign_id} is cancelled (it was cancelled): a "
                               "cancelled alert is closed and cannot be updated; send a new "
                               "alert instead")
    assert error["message"].startswith(f"la campagne {campaign_id} est annulée")
    assert "mise à jour" in error["message"]


def test_bad_unsubscribe_link_says_why_in_the_citizens_language(client: TestClient) -> None:
    from tocsin.subscribers.optout import unsubscribe_token

    forged = unsubscribe_token("not-the-deployment-secret", "bob@example.org")
    r = client.get(f"/unsubscribe/{forged}?lang=nl")
    assert r.status_code == 400
    assert "de handtekening van de link klopt niet" in r.text
    assert "signature does not match" not in r.text
    r = client.get(f"/unsubscribe/{forged}?lang=en")
    assert "the link&#39;s signature does not match" in r.text or \
        "the link's signature does not match" in r.text


# ----------------------------------------------------------------------------- no English left

#: English words of the service messages (TextInputError, parse_local_time, the draft
#: import, the messages API, the area problems and hints) that no German sentence holds.
_ENGLISH_SENTENCE = re.compile(
    r"\b(the|is|not|outside|crosses|itself|must|characters|contains|reads|check|shortened|"
    r"left out|does|exist|confirm|type of message|coordinates look|swapping|would|Belgium|"
    r"polygon \d|repaired|lies|around|choose another|empty)\b")


def _english_in(text: str) -> list[str]:
    return _ENGLISH_SENTENCE.findall(text)


def test_service_messages_in_german_leave_no_english(client: TestClient) -> None:
    """Issue 9 / decision 0018: what the services say about bad input — a name with a
    control character, a time that does not exist, a launch without a type, a text in
    the wrong language, a bowtie polygon, an area written lat,lon — reaches a German
    operator in German (the JSON ``reason`` stays English)."""
    h = _api_in(client, "de")
    # A bowtie: repaired, the problem ("the outline crosses itself at …") in German.
    bowtie = {"type": "Polygon", "coordinates": [[[4.52, 50.62], [4.58, 50.68], [4.58, 50.62],
                                                  [4.52, 50.68], [4.52, 50.62]]]}
    r = client.post("/api/campaigns/estimate", headers=h, json={
        "texts": {"fr": "Exercice"}, "channels": ["sms"], "kind": "exercise",
        "area_geojson": bowtie})
    assert r.status_code == 200, r.text
    (repaired,) = [w for w in r.json()["warnings"] if w["code"] == "area_repaired"]
    assert "der Umriss kreuzt sich selbst bei Länge 4.550000" in repaired["message"], repaired
    assert not _english_in(repaired["message"]), repaired["message"]
    assert repaired["problem"].startswith("the outline crosses itself")  # the JSON key stays
    # The same outline written lat,lon: the swap hint in German.
    swapped = {"type": "Polygon", "coordinates": [[[50.62, 4.52], [50.62, 4.58],
                                                   [50.68, 4.58], [50.62, 4.52]]]}
    r = client.post("/api/areas/geojson", headers=h, json={"geojson": json.dumps(swapped)})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert "swapping them would place the area in Belgium" in error["reason"]
    assert "vertauscht läge das Gebiet in Belgien" in error["message"], error
    assert not _english_in(error["message"]), error["message"]
    # A launch without a confirmed type, a schedule in the hour skipped in March.
    r = client.post("/api/campaigns", headers=h, json={
        "texts": {"fr": "Exercice."}, "channels": ["cap"], "municipality_nis": "25112"})
    assert r.status_code == 422
    assert r.json()["error"]["message"].startswith("bestätigen Sie die Art der Meldung")
    r = client.post("/api/campaigns/estimate", headers=h, json={
        "texts": {"fr": "Exercice."}, "channels": ["cap"], "municipality_nis": "25112",
        "kind": "exercise", "scheduled_for": "2027-03-28 02:30"})
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["field"] == "scheduled_for" and "does not exist in Belgium" in error["reason"]
    assert error["message"] == ("2027-03-28 02:30 gibt es in Belgien nicht (die Uhren werden "
                                "in dieser Nacht eine Stunde vorgestellt); wählen Sie eine "
                                "andere Uhrzeit")
    # A French text under Dutch: the messages API's warning in German, code kept.
    r = client.post("/api/messages/language-check", headers=h, json={"texts": {
        "nl": "Fermez portes et fenêtres. Restez à l'intérieur et écoutez la radio."}})
    assert r.status_code == 200, r.text
    (wrong,) = r.json()["warnings"]
    assert (wrong["code"], wrong["field"], wrong["detected"]) == (
        "wrong_language", "text.nl", "fr")
    assert wrong["message"].startswith("text.nl liest sich wie Französisch, nicht wie "
                                       "Niederländisch"), wrong
    assert not _english_in(wrong["message"].removeprefix("text.nl")), wrong["message"]
    # A template name with a control character (core/text.py TextInputError), on the page.
    page = client.get("/templates/new?lang=de").text
    r = client.post("/templates/new", data={
        "csrf_token": csrf_of(page), "name": "Brand\x07alarm", "kind": "alert",
        "channels": "sms", "text-fr": "Incendie."})
    assert r.status_code == 422, r.text[:300]
    assert "enthält das Steuerzeichen U+0007" in r.text
    assert "contains the control character" not in r.text


def test_imported_draft_warnings_in_german(client: TestClient, engine: Engine) -> None:
    """A CAP alert whose area runs over the authority's border and names an unknown NIS
    code: the draft's warnings (campaigns/drafts.py), stored with their templates, are
    shown in German in the composer; the JSON draft keeps the English message."""
    import datetime as dt

    from test_cap_validate import area_xml, cap_xml, info_xml
    from tocsin.campaigns.drafts import get_draft, save_draft
    from tocsin.cap.importer import import_cap

    over = "50.65,4.55 50.65,4.80 50.75,4.80 50.75,4.55 50.65,4.55"
    doc = cap_xml(info_xml("fr-BE", areas=(area_xml(
        "Wavre et environs", polygons=(over,), geocodes=(("NIS", "99999"),)),)))
    imported = import_cap(doc, now=dt.datetime(2026, 11, 29, 10, 30, tzinfo=dt.UTC))
    draft_id = save_draft(engine, "25000", imported, "op")
    english = {w["message"] for w in get_draft(engine, draft_id, None)["warnings"]}
    assert "NIS geocode 99999 is not a Belgian municipality or province; left out" in english
    assert any(m.startswith("The area was cut at the border of Brabant wallon") for m in english)
    _api_in(client, "de")
    r = client.get(f"/campaigns/new?draft={draft_id}&lang=de")
    assert r.status_code == 200, r.text[:300]
    block = r.text[r.text.index('class="import-warnings"'):]
    block = block[:block.index("</ul>")]
    assert "NIS-Geocode 99999 ist keine belgische Gemeinde oder Provinz" in block
    assert "Das Gebiet wurde an der Grenze von Brabant wallon" in block
    assert not _english_in(re.sub(r"<[^>]+>|info\[\d\]/\S+", " ", block)), block


def test_cap_importer_warnings_and_refusals_in_german(client: TestClient,
                                                        engine: Engine) -> None:
    """The importer's own warnings (a Draft upstream, an Update, a polygon left open, a
    NIS code that is not 5 digits, a severity CAP does not know) and its refusals (a
    System message) carry their templates: German in the composer, English in JSON."""
    import datetime as dt

    from test_cap_validate import area_xml, cap_xml, info_xml
    from tocsin.campaigns.drafts import save_draft
    from tocsin.cap.importer import CapImportError, import_cap

    wavre_open = "50.70,4.58 50.70,4.62 50.73,4.62 50.73,4.58"
    doc = cap_xml(info_xml("fr-BE", severity="Terrible", areas=(area_xml(
        "Wavre", polygons=(wavre_open,), geocodes=(("NIS", "12"),)),)),
        status="Draft", msg_type="Update",
        references="alert@example.be,BE-TEST-0,2026-11-29T09:00:00+01:00")
    imported = import_cap(doc, now=dt.datetime(2026, 11, 29, 10, 30, tzinfo=dt.UTC))
    english = {w.message for w in imported.warnings}
    assert any(m.startswith("the upstream alert is a Draft") for m in english), english
    assert any("was not closed" in m for m in english)
    draft_id = save_draft(engine, "25000", imported, "op")
    token = _api_in(client, "de")["X-CSRF-Token"]
    r = client.get(f"/campaigns/new?draft={draft_id}&lang=de")
    assert r.status_code == 200, r.text[:300]
    block = r.text[r.text.index('class="import-warnings"'):]
    block = block[:block.index("</ul>")]
    for german in ("die ursprüngliche Warnung ist ein Draft", "war nicht geschlossen",
                   "hat keine 5 Ziffern", "ist kein CAP-1.2-Wert für severity",
                   "die ursprüngliche Meldung ist ein CAP Update"):
        assert german in block, (german, block)
    # the XML schema validator's own detail (lxml, English) is quoted after the sentence
    plain = re.sub(r"trotzdem importiert:[^<]*", " ", html.unescape(block))
    assert not _english_in(re.sub(r"<[^>]+>|info\[\d\]/\S+|'[^']*'", " ", plain)), block
    with pytest.raises(CapImportError) as refused:
        import_cap(cap_xml(status="System"))
    assert "not for the public" in str(refused.value)
    r = client.post("/campaigns/import-cap", files={
        "file": ("system.xml", cap_xml(status="System"), "application/xml")},
        data={"csrf_token": token})
    assert "nicht für die Öffentlichkeit" in r.text, r.text[-1500:]


def test_trans_blocks_name_their_variables_the_jinja_way() -> None:
    """Inside ``{% trans %}`` a variable is ``{{ name }}``: a literal ``%(name)s`` is
    escaped by Jinja, so the catalogue's translation is never found and the reader sees
    the English text with the raw placeholder (found by a trial on /register)."""
    found = []
    for path in sorted(TEMPLATES.glob("*.html")):
        text = path.read_text(encoding="utf-8")
        for block in re.findall(r"{%-?\s*trans\b.*?%}(.*?){%-?\s*endtrans", text, re.S):
            if re.search(r"%\(\w+\)", block):
                found.append((path.name, block.strip()[:80]))
    assert found == []
