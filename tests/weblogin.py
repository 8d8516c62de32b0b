"""Logging in to the web platform from tests, the way a browser does (form + CSRF token).

Live logins of sender roles need TOTP (issue 8): :func:`log_in` enrols an
authenticator the first time (reading the key from the enrolment page, as a
person types it into an app) and remembers it per database and username, so
later logins answer the second step. Codes are never reused (the server
refuses a replayed time step), so a second login within 30 s uses the next step.
"""

from __future__ import annotations

import re
import time

import httpx
import pyotp
from fastapi.testclient import TestClient

#: (database URL, username) -> [secret, last step used]
_AUTHENTICATORS: dict[tuple[str, str], list] = {}


def csrf_of(html: str) -> str:
    """The CSRF token of the first form in ``html``."""
    m = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert m, "no CSRF token in the form"
    return m.group(1)


def _key(client: TestClient, username: str) -> tuple[str, str]:
    return (str(client.app.state.engine.url), username)  # type: ignore[attr-defined]


def remember_totp(client: TestClient, username: str, secret: str) -> None:
    """Tell :func:`log_in` the TOTP secret of a user enrolled by other means."""
    _AUTHENTICATORS[_key(client, username)] = [secret.replace(" ", ""), 0]


def next_code(client: TestClient, username: str) -> str:
    """A code of the user's authenticator that the server has not seen yet."""
    entry = _AUTHENTICATORS[_key(client, username)]
    while True:
        step = max(int(time.time() // 30), entry[1] + 1)
        if step <= int(time.time() // 30) + 1:
            break
        time.sleep(1)
    entry[1] = step
    return str(pyotp.TOTP(entry[0]).at(step * 30))


def log_in(client: TestClient, username: str, password: str,
           environment: str = "simulation") -> httpx.Response:
    """Post the login form (and the TOTP step or enrolment when asked); the response
    is 303 to ``/`` on success."""
    token = csrf_of(client.get("/login").text)
    r = client.post("/login", data={"username": username, "password": password,
                                    "environment": environment, "csrf_token": token},
                    follow_redirects=False)
    where = r.headers.get("location", "") if r.status_code == 303 else ""
    if where == "/login/totp":
        page = client.get(where).text
        r = client.post(where, data={"code": next_code(client, username),
                                     "csrf_token": csrf_of(page)}, follow_redirects=False)
    elif where == "/account/totp":
        page = client.get(where).text
        m = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page)
        assert m, "no TOTP key on the enrolment page"
        remember_totp(client, username, m.group(1))
        r = client.post(where, data={"code": next_code(client, username),
                                     "csrf_token": csrf_of(page)}, follow_redirects=False)
    return r


def session_csrf(client: TestClient, username: str, password: str,
                 environment: str = "simulation", page: str = "/") -> str:
    """Log in and return the session's CSRF token (read from ``page``)."""
    r = log_in(client, username, password, environment)
    assert r.status_code == 303, r.text
    return csrf_of(client.get(page).text)
