"""Account use cases: invitations, password changes, session revocation, TOTP reset.

Who may manage whose account is decided by :func:`tocsin.authorities.policy.decide`
with ``Action.USERS_MANAGE`` (an authority admin for its own authority, the
federal operator anywhere); a refusal raises :class:`Denied` naming the rule and
is written to the audit log. Passwords follow :mod:`tocsin.authorities.passwords`.

Invitations (issue 8.4): a single-use link, valid ``INVITATION_TTL_S`` seconds,
of which only the SHA-256 is stored; the invitee chooses a username and a
password, and is then asked to set up TOTP.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from email_validator import EmailNotValidError, validate_email
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities import sessions
from tocsin.authorities.access import Denied as Denied  # re-exported for callers
from tocsin.authorities.access import (
    actor_of_user,
    audited_denials,
    authority_facts,
    require,
)
from tocsin.authorities.models import Authority, User, UserInvitation
from tocsin.authorities.passwords import check_password
from tocsin.authorities.policy import ROLES, Action, Actor, AuthorityFacts, Target
from tocsin.authorities.services import hash_password, record_audit
from tocsin.core.db import transaction, utcnow
from tocsin.core.errors import InputError, NotFound
from tocsin.core.i18n import N_
from tocsin.core.settings import Settings

INVITATION_TTL_S = 72 * 3600
INVITATION_PATH = "/invitation/"

BRUSSELS = ZoneInfo("Europe/Brussels")
INVITATION_SUBJECT = N_("Your Tocsin account")
INVITATION_BODY = N_(
    "You are invited to Tocsin, the public-warning platform, as %(role)s of %(authority)s.\n"
    "\n"
    "Open this link to choose your username and password, then set up the second factor (an "
    "authenticator app):\n"
    "\n"
    "%(link)s\n"
    "\n"
    "The link works once, until %(until)s (Brussels time).\n"
    "If you did not expect this e-mail, ignore it.\n")
#: The roles' words (msgids), for the invitation e-mail in the invitee's language.
ROLE_WORDS = {"viewer": N_("viewer"), "operator": N_("operator"), "admin": N_("admin"),
              "federal_operator": N_("federal operator")}


def actor_of(session: Session, user_id: int, second_factor: bool = False) -> Actor:
    """The policy's ``Actor`` for user ``user_id`` (``second_factor``: of its session),
    with its authority's agreement, cooperation and training facts
    (``access.actor_of_user``). Raises LookupError when the user does not exist."""
    user = session.get(User, user_id)
    if user is None:
        raise LookupError(f"user: no user {user_id}")
    return actor_of_user(session, user, second_factor=second_factor)


#: The CLI acts with the machine's authority, like ``tocsin user`` (it holds the database).
CLI_ACTOR = Actor(username="cli", role="federal_operator",
                  authority=AuthorityFacts(id="BE", kind="federal", parent_id=None))


def _check(session: Session, actor: Actor, authority: Authority, role: str | None,
           source: str | None) -> None:
    """``policy``: USERS_MANAGE on ``authority`` for ``role``; raises ``Denied`` (audited by
    :func:`access.audited_denials` around the caller's transaction)."""
    require(actor, Action.USERS_MANAGE,
            Target(authority=authority_facts(authority), target_role=role), authority.id)


@dataclass(frozen=True)
class Invitation:
    """A new invitation: ``link`` (absolute URL with the single-use token), when it
    ``expires_at`` (UTC), ``emailed``: whether an e-mail was handed to the SMTP relay."""

    email: str
    role: str
    authority_id: str
    link: str
    expires_at: dt.datetime
    emailed: bool = False


def invite_user(engine: Engine, actor: Actor, email: str, role: str, authority_id: str,
                base_url: str, source: str | None = None,
                ttl_s: int = INVITATION_TTL_S) -> Invitation:
    """Invite ``email`` as ``role`` of ``authority_id``; returns the link (not e-mailed here).

    Raises ValueError naming the field (``email``, ``role``), LookupError
    (``authority_id``), :class:`Denied` when the policy refuses
    (``Action.USERS_MANAGE``). Audited ``user.invite`` (the address itself is
    personal data and stays out of the audit detail).
    """
    try:
        address = validate_email(email.strip(), check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise InputError("email", N_("not a valid e-mail address"), code="email_invalid",
                         detail=str(exc)) from None
    if role not in ROLES:
        raise InputError("role", N_("%(value)s is not one of %(choices)s"), code="role_unknown",
                         value=repr(role)[:40], choices=", ".join(ROLES))
    token = sessions.new_token()
    now = utcnow()
    with audited_denials(engine, source), transaction(engine) as s:
        authority = s.get(Authority, authority_id)
        if authority is None:
            raise LookupError(f"authority_id: no authority {authority_id!r}")
        _check(s, actor, authority, role, source)
        row = UserInvitation(token_hash=sessions.token_hash(token), email=address, role=role,
                             authority_id=authority_id, invited_by=actor.username,
                             created_at=now, expires_at=now + dt.timedelta(seconds=ttl_s))
        s.add(row)
        s.flush()
        record_audit(s, actor.username, "user.invite", target=f"invitation:{row.id}",
                     source=source, detail={"role": role, "authority_id": authority_id})
    link = base_url.rstrip("/") + INVITATION_PATH + token
    return Invitation(address, role, authority_id, link, row.expires_at)


def invitation_email(settings: Settings, invitation: Invitation, authority_name: str,
                     language: str = "en") -> bytes:
    """The invitation e-mail in ``language`` (fr | nl | de | en, through the interface's
    catalogues; the expiry in Brussels time): RFC 5322 bytes, from the no-reply sender,
    DKIM if set."""
    from babel.dates import format_datetime

    from tocsin.channels.email import DkimSigner, build_email
    from tocsin.core.i18n import LANGUAGES, gettext

    language = language if language in LANGUAGES else "en"
    role = gettext(language, ROLE_WORDS.get(invitation.role, invitation.role))
    until = format_datetime(invitation.expires_at, "medium", tzinfo=BRUSSELS,
                            locale={"en": "en_GB"}.get(language, f"{language}_BE"))
    body = gettext(language, INVITATION_BODY, role=role, authority=authority_name,
                   link=invitation.link, until=until)
    dkim = DkimSigner.from_settings(settings)
    return build_email(settings.mail_from, gettext(language, INVITATION_SUBJECT), body,
                       language, recipient=invitation.email, dkim=dkim)


def send_invitation(settings: Settings, invitation: Invitation, authority_name: str,
                    language: str = "en") -> bool:
    """Send the invitation through ``TOCSIN_SMTP_URL``; False when none is configured.

    Raises OSError / ``aiosmtplib.SMTPException`` when the relay refuses.
    """
    if not settings.smtp_url.strip():
        return False
    import aiosmtplib

    from tocsin.channels.email import SmtpAccount

    account = SmtpAccount.from_url(settings.smtp_url)
    message = invitation_email(settings, invitation, authority_name, language)

    async def send() -> None:
        await aiosmtplib.send(
            message, sender=settings.mail_from, recipients=[invitation.email],
            hostname=account.host, port=account.port,
            username=account.username or None, password=account.password or None,
            use_tls=account.implicit_tls, start_tls=account.starttls or None, timeout=30)

    asyncio.run(send())
    return True


def invite_and_send(engine: Engine, actor: Actor, email: str, role: str, authority_id: str,
                    settings: Settings, source: str | None = None,
                    base_url: str | None = None, language: str | None = None) -> Invitation:
    """:func:`invite_user` then :func:`send_invitation`; ``emailed`` says whether it went out.
    ``base_url``: where the link points (default ``settings.public_url()``; the web
    passes the address it was reached at when ``TOCSIN_PUBLIC_URL`` is unset);
    ``language``: the e-mail's language (the web passes the inviting admin's interface
    language), default the authority's first official language.

    Errors as :func:`invite_user`; a relay that refuses leaves the invitation
    valid (``emailed`` False) so the admin can hand over the link.
    """
    invitation = invite_user(engine, actor, email, role, authority_id,
                             base_url or settings.public_url(), source=source)
    with audited_denials(engine, source), transaction(engine) as s:
        authority = s.get(Authority, authority_id)
        if language is None:
            language = authority.language_list[0] if authority and \
                authority.language_list else "en"
        name = authority.name(language) if authority else authority_id
    try:
        emailed = send_invitation(settings, invitation, name, language)
    except Exception:  # noqa: BLE001 - any relay failure: the link is still shown
        emailed = False
    return Invitation(invitation.email, invitation.role, invitation.authority_id,
                      invitation.link, invitation.expires_at, emailed)


@dataclass(frozen=True)
class InvitationInfo:
    """An open invitation, as the invitee sees it."""

    email: str
    role: str
    authority_name: str


def _open_invitation(session: Session, token: str) -> UserInvitation:
    row = session.scalar(sa.select(UserInvitation).where(
        UserInvitation.token_hash == sessions.token_hash(token))) if 0 < len(token) < 200 else None
    if row is None or row.used_at is not None or utcnow() >= row.expires_at:
        raise NotFound("invitation", N_("this link is unknown, used or expired; ask for a new "
                                        "one"), code="invitation_unknown")
    return row


def invitation_info(engine: Engine, token: str) -> InvitationInfo:
    """The open invitation of ``token``; LookupError when unknown, used or expired."""
    with transaction(engine) as s:
        row = _open_invitation(s, token)
        authority = s.get(Authority, row.authority_id)
        assert authority is not None
        return InvitationInfo(row.email, row.role, authority.name())


def accept_invitation(engine: Engine, token: str, username: str, password: str,
                      display_name: str = "", source: str | None = None,
                      idle_timeout_s: int = 3600, lifetime_s: int = 12 * 3600) -> str:
    """Create the invited user and open a simulation session; returns its id.

    The link is spent. Raises LookupError (invitation unknown, used or
    expired), ValueError naming the field (``username`` empty, too long or
    taken; ``password`` refused by the policy). Audited ``user.create``.
    """
    username = username.strip()
    if not username or len(username) > 120 or any(c.isspace() for c in username):
        raise InputError("username", N_("1 to 120 characters, no spaces"),
                         code="username_invalid")
    check_password(password, username)
    now = utcnow()
    with transaction(engine) as s:
        row = _open_invitation(s, token)
        if s.scalar(sa.select(User.id).where(User.username == username)) is not None:
            raise InputError("username", N_("already taken; choose another"),
                             code="username_taken")
        user = User(username=username, display_name=display_name.strip()[:200] or username,
                    password_hash=hash_password(password), authority_id=row.authority_id,
                    role=row.role, email=row.email, created_at=now, password_changed_at=now)
        s.add(user)
        s.flush()
        row.used_at = now
        row.user_id = user.id
        record_audit(s, row.invited_by, "user.create", target=username, source=source,
                     detail={"role": row.role, "authority_id": row.authority_id,
                             "invitation": row.id})
        return sessions.start_session(s, user, "simulation", None, False, idle_timeout_s,
                               lifetime_s, now)


# ----------------------------------------------------------------------------- accounts


def change_password(engine: Engine, user_id: int, current: str, new: str,
                    source: str | None = None) -> None:
    """Change the user's own password and end every one of its sessions.

    Raises ValueError naming the field: ``current_password`` (wrong),
    ``password`` (refused by the policy). Audited ``user.password``.
    """
    from tocsin.authorities.services import verify_password

    with transaction(engine) as s:
        user = s.get(User, user_id)
        if user is None:
            raise LookupError("user: gone")
        if not verify_password(user.password_hash, current):
            raise InputError("current_password", N_("wrong password"),
                             code="current_password_wrong")
        check_password(new, user.username)
        user.password_hash = hash_password(new)
        user.password_changed_at = utcnow()
        sessions.revoke_sessions(s, user.id)
        record_audit(s, user.username, "user.password", target=user.username, source=source)


#: The interface languages (issue 9): Belgium's three official languages and English.
INTERFACE_LANGUAGES = ("fr", "nl", "de", "en")


def set_language(engine: Engine, user_id: int, language: str,
                 source: str | None = None) -> None:
    """Set the user's own interface language: one of :data:`INTERFACE_LANGUAGES`, or
    ``""`` to follow the browser (``Accept-Language``).

    Raises ValueError ``language: ...`` for any other value, LookupError when the
    user is gone. Audited ``user.language``.
    """
    if language not in (*INTERFACE_LANGUAGES, ""):
        raise InputError("language", N_("must be one of %(choices)s or empty, not %(value)s"),
                         code="language_unknown", choices=", ".join(INTERFACE_LANGUAGES),
                         value=repr(language[:20]))
    with transaction(engine) as s:
        user = s.get(User, user_id)
        if user is None:
            raise LookupError("user: gone")
        user.language = language or None
        record_audit(s, user.username, "user.language", target=user.username, source=source,
                     detail={"language": language or None})


def _target_user(session: Session, actor: Actor, username: str, source: str | None) -> User:
    user = session.scalar(sa.select(User).where(User.username == username.strip()))
    if user is None:
        raise NotFound("username", N_("no user %(name)s"), code="user_unknown",
                       name=repr(username[:120]))
    authority = session.get(Authority, user.authority_id)
    assert authority is not None
    _check(session, actor, authority, user.role, source)
    return user


def revoke_user_sessions(engine: Engine, actor: Actor, username: str,
                         source: str | None = None) -> int:
    """End every session of ``username`` at once (an admin's revoke); the count ended.

    Raises LookupError (no such user), :class:`Denied`. Audited ``user.revoke_sessions``.
    """
    with audited_denials(engine, source), transaction(engine) as s:
        user = _target_user(s, actor, username, source)
        count = sessions.revoke_sessions(s, user.id)
        record_audit(s, actor.username, "user.revoke_sessions", target=user.username,
                     source=source, detail={"sessions": count})
        return count


def reset_totp(engine: Engine, actor: Actor, username: str, source: str | None = None) -> None:
    """Forget ``username``'s TOTP (a lost phone) and end its sessions; it enrols again
    at its next live login. Raises LookupError, :class:`Denied`. Audited ``user.totp_reset``."""
    with audited_denials(engine, source), transaction(engine) as s:
        user = _target_user(s, actor, username, source)
        user.totp_secret = None
        user.totp_last_step = None
        sessions.revoke_sessions(s, user.id)
        record_audit(s, actor.username, "user.totp_reset", target=user.username, source=source)


def users_actor(engine: Engine, user_id: int, second_factor: bool) -> Actor:
    """The ``Actor`` of a logged-in user (for the web layer, which never queries tables)."""
    with transaction(engine) as s:
        return actor_of(s, user_id, second_factor)
