"""Users and sessions (issue 8.4) and the security probe's findings: server-side
sessions, login slow-down across processes, trusted proxies, TOTP, passwords,
invitations, CSRF everywhere."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import pyotp
import pytest
import sqlalchemy as sa
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.engine import Engine

from tocsin.authorities import accounts, sessions, totp
from tocsin.authorities import services as authorities
from tocsin.authorities.models import AuditEntry, User, WebSession
from tocsin.authorities.passwords import PasswordPolicyError, check_password
from tocsin.core.db import make_engine, transaction
from tocsin.core.migrate import upgrade
from tocsin.core.settings import Settings
from tocsin.web.app import create_app
from tocsin.web.security import client_address
from weblogin import csrf_of, log_in, next_code, remember_totp

PASSWORD = "correct horse battery staple"


@pytest.fixture
def engine(tmp_path: Path) -> Engine:
    from test_web import seed

    eng = make_engine(f"sqlite:///{tmp_path / 'auth.db'}")
    upgrade(eng)
    seed(eng)  # province 25000 (user "op"), municipalities 25112 (user "wavre"), 25084
    authorities.create_user(eng, "admin25", PASSWORD, "25000", role="admin")
    authorities.create_user(eng, "viewer", PASSWORD, "25112", role="viewer")
    return eng


def _app(engine: Engine, tmp_path: Path, **extra: object):  # type: ignore[no-untyped-def]
    settings = Settings(var_dir=tmp_path / "var", database_url=str(engine.url), **extra)
    return create_app(engine, start_worker=False, settings=settings)


@pytest.fixture
def client(engine: Engine, tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(_app(engine, tmp_path)) as c:
        yield c


def _audit(engine: Engine, action: str) -> list[AuditEntry]:
    with transaction(engine) as s:
        return list(s.scalars(sa.select(AuditEntry).where(AuditEntry.action == action)))


# ----------------------------------------------------------------------------- passwords


def test_password_policy() -> None:
    check_password("three unrelated words", "op")
    for bad, why in (("short-pass1", "at least 12"), ("olivia-operator-x", "username"),
                     ("Password1234!", "too common"), ("qwertyuiop123", "too common"),
                     ("aaaaaaaaaaaaaa", "too common"), ("x" * 1025, "at most")):
        with pytest.raises(PasswordPolicyError, match=why):
            check_password(bad, "olivia-operator")


def test_create_user_applies_the_policy(engine: Engine) -> None:
    with pytest.raises(ValueError, match="password: at least 12"):
        authorities.create_user(engine, "new", "short", "25112")
    with pytest.raises(ValueError, match="must not be or contain the username"):
        authorities.create_user(engine, "beersel", "beersel-password-1", "25112")


# ----------------------------------------------------------------------------- sessions


def test_session_fixation_login_issues_a_new_id(client: TestClient, engine: Engine) -> None:
    client.get("/login")
    planted = client.cookies.get("tocsin_session")
    assert planted
    assert log_in(client, "op", PASSWORD).status_code == 303
    after = client.cookies.get("tocsin_session")
    assert after and after != planted
    # the cookie carries only the id; the database keeps only its hash
    with transaction(engine) as s:
        row = s.scalars(sa.select(WebSession)).one()
    assert len(row.token_hash) == 64 and row.token_hash not in after
    # the pre-login cookie opens nothing
    attacker = TestClient(client.app)
    attacker.cookies.set("tocsin_session", planted)
    assert attacker.get("/", follow_redirects=False).status_code == 303


def test_logout_ends_the_session_even_for_a_saved_cookie(client: TestClient,
                                                        engine: Engine) -> None:
    log_in(client, "op", PASSWORD)
    saved = client.cookies.get("tocsin_session")
    token = csrf_of(client.get("/").text)
    r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303
    thief = TestClient(client.app)
    thief.cookies.set("tocsin_session", saved)
    assert thief.get("/", follow_redirects=False).headers["location"] == "/login"
    assert thief.get("/api/authority/territory.geojson").status_code == 401
    assert _audit(engine, "logout")


def test_admin_revoke_and_password_change_end_sessions(client: TestClient, engine: Engine,
                                                       tmp_path: Path) -> None:
    victim = TestClient(client.app)
    log_in(victim, "wavre", PASSWORD)
    assert victim.get("/", follow_redirects=False).status_code == 200
    # the admin of the province is not the admin of Wavre: the policy refuses
    log_in(client, "admin25", PASSWORD)
    token = csrf_of(client.get("/admin/users").text)
    r = client.post("/admin/users/revoke-sessions", data={"username": "wavre",
                                                         "csrf_token": token})
    assert r.status_code == 403 and "an admin manages only the users of its authority" in r.text
    assert victim.get("/", follow_redirects=False).status_code == 200
    # the federal operator may
    assert accounts.revoke_user_sessions(engine, accounts.CLI_ACTOR, "wavre") == 1
    assert victim.get("/", follow_redirects=False).status_code == 303
    # a password change ends every session of the user, the current one too
    other = TestClient(client.app)
    log_in(other, "op", PASSWORD)
    token = csrf_of(other.get("/account").text)
    r = other.post("/account/password", data={
        "current_password": PASSWORD, "password": "password1234",
        "password_again": "password1234", "csrf_token": token})
    assert r.status_code == 422 and "too common" in r.text
    r = other.post("/account/password", data={
        "current_password": PASSWORD, "password": "new phrase for the shift",
        "password_again": "new phrase for the shift", "csrf_token": token},
        follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?done=password"
    assert other.get("/", follow_redirects=False).status_code == 303
    assert log_in(other, "op", "new phrase for the shift").status_code == 303


def test_account_errors_are_in_the_operators_language(client: TestClient) -> None:
    """Issue 9: the password policy, a wrong current password and an unknown user are
    service errors with a code; the account and user pages show them translated."""
    log_in(client, "op", PASSWORD)
    token = csrf_of(client.get("/account?lang=de").text)
    for data, german in (
            ({"current_password": PASSWORD, "password": "password1234",
              "password_again": "password1234"}, "zu verbreitet"),
            ({"current_password": PASSWORD, "password": "short", "password_again": "short"},
             "mindestens 12 Zeichen, 5 erhalten"),
            ({"current_password": "not it at all", "password": "new phrase for the shift",
              "password_again": "new phrase for the shift"}, "falsches Passwort")):
        r = client.post("/account/password", data={**data, "csrf_token": token})
        assert r.status_code == 422 and german in r.text, r.text[-2000:]
        assert "too common" not in r.text and "wrong password" not in r.text
    r = client.post("/account/language", data={"language": "xx", "csrf_token": token})
    assert r.status_code == 422 and "muss einer der Werte" in r.text


def test_sessions_expire_when_idle_and_after_their_lifetime(engine: Engine) -> None:
    result = sessions.log_in(engine, "op", PASSWORD, "simulation", "10.0.0.1",
                             idle_timeout_s=600, lifetime_s=3600)
    token = result.token
    now = dt.datetime.now(dt.UTC)
    assert sessions.resolve_session(engine, token, now + dt.timedelta(seconds=500)) is not None
    assert sessions.resolve_session(engine, token, now + dt.timedelta(seconds=1050)) is not None
    assert sessions.resolve_session(engine, token, now + dt.timedelta(seconds=1700)) is None
    for minutes in range(9, 70, 9):  # active all along: still the lifetime ends it
        at = now + dt.timedelta(minutes=minutes)
        alive = sessions.resolve_session(engine, token, at)
        assert (alive is not None) == (minutes < 60), minutes


# ----------------------------------------------------------------------------- rate limiting


def test_brute_force_across_two_web_processes_with_forged_forwarded_for(
        engine: Engine, tmp_path: Path) -> None:
    one, two = TestClient(_app(engine, tmp_path)), TestClient(_app(engine, tmp_path))
    statuses = []
    for i in range(8):
        c = (one, two)[i % 2]
        token = csrf_of(c.get("/login").text)
        r = c.post("/login", data={"username": "op", "password": f"guess {i}",
                                   "csrf_token": token},
                   headers={"X-Forwarded-For": f"198.51.100.{i}",
                            "Forwarded": f"for=203.0.113.{i}"})
        statuses.append(r.status_code)
    # 4 failures heard, then both processes slow the account down
    assert statuses[:4] == [401] * 4 and set(statuses[4:]) == {429}
    assert "Try again in" in r.text
    # the right password waits too (from an address that never logged in to it)...
    assert log_in(one, "op", PASSWORD).status_code == 429
    # ...but the account is not locked: another user is unaffected
    assert log_in(two, "wavre", PASSWORD).status_code == 303
    with transaction(engine) as s:
        clients = set(s.scalars(sa.text("SELECT DISTINCT client FROM login_attempt")))
    assert clients == {"testclient"}  # the forged headers were not believed
    assert _audit(engine, "login_throttled")


def test_slow_down_not_lock_out(engine: Engine) -> None:
    s_now = dt.datetime.now(dt.UTC)
    with transaction(engine) as s:
        for i in range(20):
            sessions.record_login_attempt(s, "op", "192.0.2.66", False,
                                          s_now - dt.timedelta(seconds=20 - i))
        # at most 30 s, however many failures
        assert 0 < sessions.login_wait(s, "op", "192.0.2.66", s_now) <= 30
        assert sessions.login_wait(s, "op", "192.0.2.66",
                                   s_now + dt.timedelta(seconds=31)) == 0
        # the operator's usual address is not slowed down by an attacker elsewhere
        sessions.record_login_attempt(s, "op", "192.0.2.10", True,
                                      s_now - dt.timedelta(days=2))
        assert sessions.login_wait(s, "op", "192.0.2.10", s_now) == 0
        # one address's hard cap
        for i in range(30):
            sessions.record_login_attempt(s, f"user{i}", "192.0.2.99", False,
                                          s_now - dt.timedelta(seconds=60))
        assert sessions.login_wait(s, "someone", "192.0.2.99", s_now) > 60


def test_forwarded_address_only_from_trusted_proxies(engine: Engine, tmp_path: Path) -> None:
    nets = Settings(trusted_proxies="10.0.0.0/8, 192.168.1.1").trusted_proxy_networks()
    xff = {"x-forwarded-for": "6.6.6.6, 198.51.100.7, 10.1.2.3"}
    assert client_address("203.0.113.9", xff, nets) == "203.0.113.9"  # peer not a proxy
    assert client_address("10.0.0.2", xff, nets) == "198.51.100.7"  # rightmost untrusted
    assert client_address("10.0.0.2", {"forwarded": 'for="[2001:db8::1]:4711"'},
                          nets) == "2001:db8::1"
    assert client_address("10.0.0.2", {"x-forwarded-for": "garbage"}, nets) == "10.0.0.2"
    assert client_address("10.0.0.2", xff, ()) == "10.0.0.2"
    with pytest.raises(ValueError, match="not an IP address or CIDR"):
        Settings(trusted_proxies="10.0.0.0/8 proxy.example")
    # through the app: a trusted proxy's header counts per real client
    app = _app(engine, tmp_path, trusted_proxies="127.0.0.1")
    c = TestClient(app, client=("127.0.0.1", 5000))
    token = csrf_of(c.get("/login").text)
    c.post("/login", data={"username": "op", "password": "nope", "csrf_token": token},
           headers={"X-Forwarded-For": "198.51.100.23", "X-Forwarded-Proto": "https"})
    with transaction(engine) as s:
        assert s.scalar(sa.text("SELECT client FROM login_attempt")) == "198.51.100.23"
    r = log_in(c, "wavre", PASSWORD)
    assert r.status_code == 303
    # Secure cookie when the browser talks HTTPS to the trusted proxy, not otherwise
    fresh = TestClient(app, client=("127.0.0.1", 5001))
    cookie = fresh.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert "secure" in cookie.lower() and "httponly" in cookie.lower()
    assert "samesite=lax" in cookie.lower()
    fresh = TestClient(app, client=("127.0.0.1", 5002))
    assert "secure" not in fresh.get("/login").headers["set-cookie"].lower()
    forged = TestClient(app, client=("203.0.113.5", 5003))
    cookie = forged.get("/login", headers={"X-Forwarded-Proto": "https"}).headers["set-cookie"]
    assert "secure" not in cookie.lower()  # not from a trusted proxy: the header is ignored


# ----------------------------------------------------------------------------- TOTP


def test_live_needs_totp_enrolment_simulation_does_not(client: TestClient,
                                                      engine: Engine) -> None:
    assert log_in(client, "wavre", PASSWORD).status_code == 303
    page = client.get("/").text
    assert "set up an authenticator app" in page  # the nudge
    client.cookies.clear()
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "wavre", "password": PASSWORD,
                                    "environment": "live", "csrf_token": token},
                    follow_redirects=False)
    assert r.headers["location"] == "/account/totp"
    assert client.get("/", follow_redirects=False).status_code == 303  # not in Live yet
    page = client.get("/account/totp").text
    assert "<svg" in page and 'id="totp-secret"' in page
    secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)[1].replace(" ", "")
    r = client.post("/account/totp", data={"code": "000000", "csrf_token": csrf_of(page)})
    assert r.status_code == 422
    code = pyotp.TOTP(secret).now()
    r = client.post("/account/totp", data={"code": code, "csrf_token": csrf_of(page)},
                    follow_redirects=False)
    assert r.status_code == 303
    assert "env-banner-live" in client.get("/").text
    # a viewer cannot send: it may choose Live without TOTP
    client.cookies.clear()
    assert log_in(client, "viewer", PASSWORD, "live").headers["location"] == "/"


def test_totp_replay_is_refused(client: TestClient, engine: Engine) -> None:
    secret = totp.new_secret()
    with transaction(engine) as s:
        user = s.scalar(sa.select(User).where(User.username == "op"))
        user.totp_secret = secret
    code = pyotp.TOTP(secret).now()
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": "op", "password": PASSWORD,
                                    "environment": "live", "csrf_token": token},
                    follow_redirects=False)
    assert r.headers["location"] == "/login/totp"
    page = client.get("/login/totp").text
    r = client.post("/login/totp", data={"code": code, "csrf_token": csrf_of(page)},
                    follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/"
    # someone who saw that code over the shoulder, with the password too
    spy = TestClient(client.app)
    token = csrf_of(spy.get("/login").text)
    spy.post("/login", data={"username": "op", "password": PASSWORD, "environment": "live",
                             "csrf_token": token})
    page = spy.get("/login/totp").text
    r = spy.post("/login/totp", data={"code": code, "csrf_token": csrf_of(page)})
    assert r.status_code == 401 and "already used" in r.text
    assert spy.get("/", follow_redirects=False).status_code == 303
    # the real operator's next code works (weblogin picks a later step)
    remember_totp(client, "op", secret)
    next_code(client, "op")  # the step of `code`, already used
    client.cookies.clear()
    assert log_in(client, "op", PASSWORD, "live").status_code == 303


def test_totp_reset_by_cli(engine: Engine, tmp_path: Path,
                           monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from tocsin.cli import app
    from tocsin.core.settings import get_settings

    with transaction(engine) as s:
        s.scalar(sa.select(User).where(User.username == "op")).totp_secret = totp.new_secret()
    monkeypatch.setenv("TOCSIN_DATABASE_URL", str(engine.url))
    get_settings.cache_clear()
    from tocsin.core import db

    monkeypatch.setattr(db, "get_engine", lambda url=None: engine)
    result = CliRunner().invoke(app, ["users", "totp-reset", "op"])
    assert result.exit_code == 0, result.output
    with transaction(engine) as s:
        assert s.scalar(sa.select(User.totp_secret).where(User.username == "op")) is None
    assert _audit(engine, "user.totp_reset")[0].actor == "cli"
    result = CliRunner().invoke(app, ["users", "totp-reset", "nobody"])
    assert result.exit_code == 1 and "no user 'nobody'" in result.output
    result = CliRunner().invoke(app, ["users", "invite", "new@example.be", "--authority",
                                      "25112", "--role", "viewer", "--print-link"])
    assert result.exit_code == 0, result.output
    assert "/invitation/" in result.output


# ----------------------------------------------------------------------------- invitations


def test_invitation_by_email_single_use(engine: Engine, tmp_path: Path) -> None:
    from tocsin.channels.simulators.smtp_sink import SmtpSink

    sink = SmtpSink().start()
    try:
        app = _app(engine, tmp_path, smtp_url=sink.url)
        admin = TestClient(app)
        log_in(admin, "admin25", PASSWORD)
        token = csrf_of(admin.get("/admin/users").text)
        # the policy decides: an admin invites into its own authority only, never federal
        r = admin.post("/admin/users/invite", data={"email": "x@example.be", "role": "operator",
                                                    "authority_id": "25112", "csrf_token": token})
        assert r.status_code == 403
        r = admin.post("/admin/users/invite", data={
            "email": "x@example.be", "role": "federal_operator", "authority_id": "25000",
            "csrf_token": token})
        assert r.status_code == 403 and "only the federal operator" in r.text
        r = admin.post("/admin/users/invite", data={"email": "not an address", "role": "viewer",
                                                    "authority_id": "25000", "csrf_token": token})
        assert r.status_code == 422 and "email:" in r.text
        r = admin.post("/admin/users/invite", data={
            "email": "Nina@Example.be", "role": "operator", "authority_id": "25000",
            "csrf_token": token})
        assert r.status_code == 200 and "It was e-mailed" in r.text
    finally:
        sink.stop()
    (mail,) = sink.messages
    assert mail.recipients == ["Nina@example.be"]
    link = re.search(r"http://\S+/invitation/\S+", mail.body)[0]
    path = link.split("://", 1)[1].split("/", 1)[1]
    with transaction(engine) as s:  # only the hash is stored
        stored = s.scalar(sa.text("SELECT token_hash FROM user_invitation"))
    assert stored not in link and len(stored) == 64
    invitee = TestClient(app)
    page = invitee.get("/" + path).text
    assert "operator of Brabant wallon" in page
    r = invitee.post("/" + path, data={"username": "nina", "password": "nina-is-here-now",
                                       "password_again": "nina-is-here-now",
                                       "csrf_token": csrf_of(page)})
    assert r.status_code == 422 and "username" in r.text
    r = invitee.post("/" + path, data={"username": "nina", "password": "a long enough one",
                                       "password_again": "a long enough one",
                                       "csrf_token": csrf_of(page)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/account/totp"
    assert "<svg" in invitee.get("/account/totp").text
    # single use
    assert TestClient(app).get("/" + path).status_code == 404
    assert authorities.authenticate(engine, "nina", "a long enough one").role == "operator"


def test_expired_invitation(engine: Engine) -> None:
    inv = accounts.invite_user(engine, accounts.CLI_ACTOR, "late@example.be", "viewer", "25112",
                               "http://x", ttl_s=-1)
    token = inv.link.rsplit("/", 1)[1]
    with pytest.raises(LookupError, match="expired"):
        accounts.accept_invitation(engine, token, "late", "a long enough one")


# ----------------------------------------------------------------------------- CSRF and fuzzing


def test_non_ascii_csrf_token_is_403_not_500(client: TestClient) -> None:
    client.get("/login")
    r = client.post("/login", data={"username": "op", "password": "x", "csrf_token": "é€😀"})
    assert r.status_code == 403
    log_in(client, "op", PASSWORD)
    r = client.post("/api/campaigns/estimate", json={},
                    headers={"X-CSRF-Token": "ÿé€".encode()})
    assert r.status_code == 403


#: Unsafe routes that take no cookie: each has its own credential in the request.
NOT_COOKIE_AUTHENTICATED = {"/unsubscribe/{token}": "RFC 8058 one-click, signed URL token",
                            "/voice/calls/{call_id}/{kind}": "the voice provider's requests, "
                            "signed with X-Twilio-Signature (tests/test_voice_calls.py)",
                            "/voice/codes/{code_id}/{kind}": "the voice provider's requests "
                            "about portal code calls, signed with X-Twilio-Signature "
                            "(tests/test_portal_voice.py)",
                            "/answer/{token}": "an e-mail's answer buttons, signed URL token "
                            "(tests/test_answers_web.py)",
                            "/inbound/sms": "the SMS provider's webhook, shared secret "
                            "(tests/test_answers_web.py)",
                            "/hooks/lbsms/{operator}": "the mobile operators' callbacks, "
                            "X-Tocsin-Signature (test_a_signed_operator_callback_…)"}


def test_a_signed_operator_callback_reaches_the_web_app_without_a_session(
        client: TestClient) -> None:
    """Live operators post location-based SMS callbacks to the public URL: no cookie, no
    CSRF token; the signature is their credential (a bad one is 401, not 403)."""
    import json
    import time

    from tocsin.channels.webhook import sign

    client.app.state.lbsms_callback_secret = "operator secret"  # type: ignore[attr-defined]
    body = json.dumps({"broadcast_id": "nope", "seq": 1, "state": "sending"}).encode()
    ts = int(time.time())
    anonymous = TestClient(client.app)
    r = anonymous.post("/hooks/lbsms/op1", content=body, headers={
        "Content-Type": "application/json", "X-Tocsin-Timestamp": str(ts),
        "X-Tocsin-Signature": sign("operator secret", ts, body)})
    assert r.status_code in (400, 404), r.text  # reached the route: an unknown broadcast
    r = anonymous.post("/hooks/lbsms/op1", content=body, headers={
        "Content-Type": "application/json", "X-Tocsin-Timestamp": str(ts),
        "X-Tocsin-Signature": "forged"})
    assert r.status_code == 401


def _api_routes(routes: list) -> Iterator[APIRoute]:  # type: ignore[type-arg]
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x wraps included routers
            yield from _api_routes(route.original_router.routes)
        elif hasattr(route, "routes") and not hasattr(route, "app"):
            yield from _api_routes(route.routes)


def test_every_unsafe_route_refuses_a_post_without_csrf_token(client: TestClient) -> None:
    log_in(client, "op", PASSWORD)
    anonymous = TestClient(client.app)
    anonymous.get("/login")
    checked = 0
    for route in _api_routes(client.app.routes):
        if route.path in NOT_COOKIE_AUTHENTICATED:
            continue
        for method in route.methods - {"GET", "HEAD", "OPTIONS"}:
            path = re.sub(r"\{[^}]+\}", "1", route.path)
            for who in (client, anonymous):
                for kwargs in ({"data": {"x": "1"}}, {"json": {"x": 1}}):
                    r = who.request(method, path, **kwargs)
                    api = path.startswith("/api/")
                    expected = {401, 403} if who is anonymous and api else {403}
                    if who is anonymous and not path.startswith("/api/"):
                        expected = {403, 303}  # no session: refused, or sent to /login
                    assert r.status_code in expected, (method, route.path, r.status_code)
            checked += 1
    assert checked >= 15


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["username", "password", "environment",
                                               "csrf_token", "x"]),
                              st.text(max_size=300), max_size=5),
       raw=st.binary(max_size=300),
       content_type=st.sampled_from(["application/x-www-form-urlencoded",
                                     "multipart/form-data; boundary=zz", "application/json",
                                     "text/plain", "multipart/form-data"]))
def test_login_and_logout_never_5xx(client: TestClient, fields: dict[str, str], raw: bytes,
                                    content_type: str) -> None:
    page = client.get("/login").text
    fields = {k: v.replace("\x00", "") for k, v in fields.items()}
    if "csrf_token" in fields and fields["csrf_token"] == "":
        fields["csrf_token"] = csrf_of(page)
    for path in ("/login", "/logout", "/login/totp", "/account/totp"):
        r = client.post(path, data=fields)
        assert r.status_code < 500, (path, fields, r.text[:200])
        r = client.post(path, content=raw, headers={"Content-Type": content_type})
        assert r.status_code < 500, (path, raw, content_type)
