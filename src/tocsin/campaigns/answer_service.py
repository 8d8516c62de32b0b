"""Group messages that collect answers (issue 10 point 8, decision 0020): storage side.

The rules are in ``campaigns.answers`` (reading a reply) and ``campaigns.quota`` (who is
asked when); this module stores and applies them:

- :func:`attach` (at launch, in the launch's transaction): the options, a letter, the
  reply instructions added to the SMS and the voice script, and for a quota the
  ordered list of people (whose deliveries the quota step writes, not the fan-out).
- :func:`record_inbound`: an SMS received (SMPP ``deliver_sm`` that is not a receipt,
  or the provider's webhook) is stored, read against the calls open for its sender,
  and recorded as an answer when it can be read.
- :func:`voice_answer` (a key pressed during a call), :func:`email_answer` (a button
  on the page an e-mail's signed link opens; within 10 s of delivery it is flagged
  as a possible mail scanner).
- :func:`run_quotas`: the time-driven step (the worker runs it every few seconds;
  tests pass ``now``): asks, escalates (SMS, voice, e-mail), times out, thanks.
- :func:`board`, :func:`answers_csv`, :func:`follow_up`: the live response board,
  the CSV export (formula cells escaped) and a new campaign to those who did not answer.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tocsin.authorities.access import audited_denials
from tocsin.authorities.models import Authority
from tocsin.authorities.policy import Action, Actor
from tocsin.campaigns import answers as rules
from tocsin.campaigns import quota as quota_rules
from tocsin.campaigns.answer_models import AnswerCall, CampaignAnswer, InboundMessage, QuotaPerson
from tocsin.campaigns.checks import check_may
from tocsin.campaigns.models import Campaign
from tocsin.core.csvcell import csv_cell
from tocsin.core.db import iso_utc, read_transaction, transaction, utcnow
from tocsin.core.errors import InputError
from tocsin.core.i18n import N_
from tocsin.dispatch.models import QUEUED, Delivery
from tocsin.subscribers.optout import set_sms_info_opt_in, sms_keyword

log = logging.getLogger(__name__)

#: "Press 1 for Yes." in the voice script, per language.
PRESS = {"fr": "Tapez %(n)d pour %(label)s.", "nl": "Druk %(n)d voor %(label)s.",
         "de": "Drücken Sie %(n)d für %(label)s.", "en": "Press %(n)d for %(label)s."}
#: Read back after a key press: "You answered: Yes. Thank you."
READ_BACK = {"fr": "Vous avez répondu : %(label)s. Merci.",
             "nl": "U hebt geantwoord: %(label)s. Dank u.",
             "de": "Ihre Antwort: %(label)s. Danke.",
             "en": "You answered: %(label)s. Thank you."}
#: The "filled, thank you" message of a quota call.
THANKS = {"fr": "Merci : nous avons assez de monde. Vous ne devez pas venir.",
          "nl": "Bedankt: we hebben genoeg mensen. U hoeft niet te komen.",
          "de": "Danke: wir haben genug Leute. Sie müssen nicht kommen.",
          "en": "Thank you: we have enough people. You do not need to come."}
#: The line before the answer link in an e-mail.
EMAIL_ANSWER = {"fr": "Répondre", "nl": "Antwoorden", "de": "Antworten", "en": "Answer"}
#: Changing the salt invalidates every answer link already sent.
_SALT = "tocsin.answer.v1"
ANSWER_CHANNELS = ("sms", "voice", "email")


@dataclass(frozen=True)
class AnswerSetup:
    """What the operator asked for: ``options`` (2–9 labels); ``quota`` people wanted
    (``None``: everyone is asked at once); ``timeout_minutes`` and ``escalate_minutes``
    of a quota call."""

    options: list[str]
    quota: int | None = None
    timeout_minutes: int = 15
    escalate_minutes: int = 5


@dataclass(frozen=True)
class PersonInfo:
    key: str
    name: str | None
    mobile: str | None
    email: str | None
    language: str


def check_setup(setup: AnswerSetup) -> AnswerSetup:
    """``setup`` with its options checked (``answers.check_options``) and its quota and
    times in range (quota 1..10,000; timeout 1..1,440 min; escalation 1..timeout).
    Raises InputError (field ``answers``, ``quota``, ``timeout_minutes``)."""
    options = rules.check_options(setup.options)
    if setup.quota is not None and not 1 <= setup.quota <= 10_000:
        raise InputError("quota", N_("the quota is a number from 1 to 10,000"),
                         code="quota_range")
    if not 1 <= setup.timeout_minutes <= 1440:
        raise InputError("timeout_minutes", N_("the time to answer is 1 to 1,440 minutes"),
                         code="timeout_range")
    escalate = max(1, min(setup.escalate_minutes, setup.timeout_minutes))
    return AnswerSetup(options, setup.quota, setup.timeout_minutes, escalate)


def _people(s: Session, campaign: Campaign) -> list[PersonInfo]:
    """The contacts a campaign's groups and lists reach, once each, in list order (static
    groups first, as named, then lists), keyed by mobile else e-mail."""
    from tocsin.campaigns.rules import choose_language, fallback_order
    from tocsin.subscribers.contact_models import Contact, ContactGroup, ContactGroupMember

    targets = campaign.targets or {}
    authority = s.get(Authority, campaign.authority_id)
    assert authority is not None
    fallback = fallback_order(authority.language_fallback, authority.language_list)
    languages = list(campaign.texts)
    rows: list[Any] = []
    cols = (Contact.name, Contact.mobile, Contact.email, Contact.language)
    for g in targets.get("groups", []):
        group = s.get(ContactGroup, g["id"])
        if group is None or group.kind != "static":
            continue
        rows += s.execute(sa.select(*cols).join(
            ContactGroupMember, ContactGroupMember.contact_id == Contact.id)
            .where(ContactGroupMember.group_id == group.id)
            .order_by(Contact.list_id, Contact.source_row, Contact.id)).all()
    for item in targets.get("lists", []):
        rows += s.execute(sa.select(*cols).where(Contact.list_id == item["id"])
                          .order_by(Contact.source_row, Contact.id)).all()
    out: dict[str, PersonInfo] = {}
    for name, mobile, email, language in rows:
        key = mobile or email
        if key and key not in out:
            out[key] = PersonInfo(key, name, mobile, email,
                                  choose_language(language, fallback, languages))
    return list(out.values())


def attach(s: Session, campaign: Campaign, setup: AnswerSetup) -> AnswerCall:
    """:func:`attach_checked`, its input errors raised as ``CampaignInputError`` (what the
    launch's callers, web and CLI, report)."""
    from tocsin.campaigns.checks import CampaignInputError

    try:
        return attach_checked(s, campaign, setup)
    except CampaignInputError:
        raise
    except InputError as exc:
        raise CampaignInputError(exc.field, exc.template, code=exc.code, **exc.params) \
            from None


def attach_checked(s: Session, campaign: Campaign, setup: AnswerSetup) -> AnswerCall:
    """Make ``campaign`` (added to ``s``, not yet fanned out) answerable: a letter not
    used by another open call, the reply line added to each language's SMS and the key
    prompts to its voice script; for a quota, its ordered people (the fan-out then
    leaves its groups and lists to :func:`run_quotas`). Raises InputError (``answers``:
    no group or list; ``quota``: more than the people reached)."""
    setup = check_setup(setup)
    if not campaign.targets:
        raise InputError("answers", N_("answers are collected from groups and contact "
                                       "lists: choose at least one"), code="answers_targets")
    taken = list(s.scalars(sa.select(AnswerCall.letter).where(AnswerCall.status == "open")))
    letter = rules.next_letter(taken)
    content = {lang: dict(fields) for lang, fields in (campaign.content or {}).items()}
    for lang, text in campaign.texts.items():
        fields = content.setdefault(lang, {})
        fields["sms"] = (fields.get("sms") or text) + "\n" + rules.instructions(
            letter, setup.options, lang)
        press = PRESS.get(lang, PRESS["en"])
        fields["voice"] = (fields.get("voice") or text) + " " + " ".join(
            press % {"n": i, "label": label} for i, label in enumerate(setup.options, 1))
    campaign.content = content
    call = AnswerCall(campaign_id=campaign.id, authority_id=campaign.authority_id,
                      options=setup.options, letter=letter, quota=setup.quota,
                      timeout_s=setup.timeout_minutes * 60,
                      escalate_s=setup.escalate_minutes * 60, accept_option=1,
                      status="open", thanks={k: v for k, v in THANKS.items()
                                             if k in campaign.texts} or THANKS,
                      created_at=utcnow())
    s.add(call)
    if setup.quota is not None:
        s.flush()
        people = _people(s, campaign)
        if setup.quota > len(people):
            raise InputError("quota", N_("the quota (%(quota)d) is more than the %(people)d "
                                         "people of the groups and lists"),
                             code="quota_people", quota=setup.quota, people=len(people))
        used = campaign.channel_list
        for position, p in enumerate(people, 1):
            available = [c for c, a in (("sms", p.mobile), ("voice", p.mobile),
                                        ("email", p.email)) if a]
            s.add(QuotaPerson(
                campaign_id=campaign.id, key=p.key, position=position, name=p.name,
                mobile=p.mobile, email=p.email, language=p.language,
                channels=",".join(quota_rules.escalation_channels(available, used)),
                state=quota_rules.WAITING, sent=""))
    return call


def holds_targets(s: Session, campaign_id: str) -> bool:
    """True when a quota call, not the fan-out, writes the deliveries of the campaign's
    groups and lists (``dispatch.fanout``)."""
    quota = s.scalar(sa.select(AnswerCall.quota).where(AnswerCall.campaign_id == campaign_id))
    return quota is not None


# ----------------------------------------------------------------------------- answers


def _answers_for(s: Session, campaign_id: str) -> str:
    """The campaign whose board an answer to ``campaign_id`` counts on: a follow-up's
    answers count on the campaign it follows up."""
    parent = s.scalar(sa.select(AnswerCall.campaign_id)
                      .where(AnswerCall.follow_up_id == campaign_id))
    return parent or campaign_id


def _respondent(s: Session, campaign_id: str, address: str) -> tuple[str, str | None]:
    """(key, name) of whoever answers from ``address``: the quota person or the contact
    of the campaign's authority with that mobile or e-mail, else the address itself."""
    from tocsin.subscribers.contact_models import Contact, ContactList

    person = s.scalar(sa.select(QuotaPerson).where(
        QuotaPerson.campaign_id == campaign_id,
        sa.or_(QuotaPerson.mobile == address, QuotaPerson.email == address)))
    if person is not None:
        return person.key, person.name
    authority = s.scalar(sa.select(Campaign.authority_id).where(Campaign.id == campaign_id))
    contact = s.execute(sa.select(Contact.mobile, Contact.email, Contact.name)
                        .join(ContactList, ContactList.id == Contact.list_id)
                        .where(ContactList.authority_id == authority,
                               sa.or_(Contact.mobile == address, Contact.email == address))
                        .order_by(Contact.id).limit(1)).first()
    if contact is not None:
        return str(contact[0] or contact[1] or address), contact[2]
    return address, None


def _record(s: Session, call: AnswerCall, channel: str, address: str, option: int,
            now: dt.datetime, possible_scanner: bool = False) -> bool:
    """Store an answer to ``call`` (open, ``option`` in range). The first answer of a
    quota person stands; elsewhere a later answer replaces the earlier one. Returns
    False when nothing changed."""
    campaign_id = _answers_for(s, call.campaign_id)
    key, name = _respondent(s, campaign_id, address)
    row = s.scalar(sa.select(CampaignAnswer).where(CampaignAnswer.campaign_id == campaign_id,
                                                   CampaignAnswer.respondent == key))
    parent = s.get(AnswerCall, campaign_id) or call
    if parent.quota is not None:
        if row is not None:
            return False
        person = s.get(QuotaPerson, (campaign_id, key))
        if person is not None:
            p = _person(person)
            if not quota_rules.answer(p, option, now, _quota_rules(parent)):
                return False
            _store_person(person, p)
    if row is None:
        s.add(CampaignAnswer(campaign_id=campaign_id, respondent=key, name=name,
                             channel=channel, address=address, option=option,
                             answered_at=now, possible_scanner=possible_scanner))
    else:
        row.option, row.channel, row.address = option, channel, address
        row.answered_at, row.possible_scanner = now, possible_scanner
    return True


def _open_calls(s: Session, address: str, channel: str = "sms") -> list[AnswerCall]:
    """The open calls with a delivery to ``address`` on ``channel``, oldest first (one
    delivery per campaign, channel and address: no duplicates)."""
    return list(s.scalars(
        sa.select(AnswerCall).join(Delivery, Delivery.campaign_id == AnswerCall.campaign_id)
        .where(AnswerCall.status == "open", Delivery.channel == channel,
               Delivery.address == address)
        .order_by(AnswerCall.created_at, AnswerCall.campaign_id)))


@dataclass(frozen=True)
class InboundResult:
    """What an inbound SMS became: its row ``id``, the ``campaign_id`` and ``option`` it
    answered, else the ``reason`` (``answers.REASONS``)."""

    id: int
    campaign_id: str | None
    option: int | None
    reason: str | None


def _e164(sender: str) -> str:
    digits = "".join(ch for ch in sender if ch.isdigit())
    if sender.strip().startswith("00"):
        digits = digits[2:]
    return "+" + digits if digits else sender.strip()


def record_inbound(engine: Engine, sender: str, text: str, *, via: str,
                   recipient: str | None = None, provider_id: str | None = None,
                   now: dt.datetime | None = None) -> InboundResult:
    """Store an SMS received from ``sender`` (E.164, or digits in international form as
    SMPP gives them) and record it as an answer when it reads as one
    (``answers.read_reply`` against the calls open for that number). A STOP or START
    keyword (``subscribers.optout.sms_keyword``) switches the number's general-interest
    information off or on instead (reason ``opt_out`` / ``opt_in``). Never raises for
    an unreadable text: the row keeps the reason."""
    now = now or utcnow()
    address = _e164(sender)
    keyword = sms_keyword(text)
    if keyword is not None:  # STOP / START (F9): never an answer
        with transaction(engine) as s:
            set_sms_info_opt_in(s, address, keyword == "start", source=via)
            msg = InboundMessage(channel="sms", via=via, sender=address, recipient=recipient,
                                 text=text[:2000], provider_id=provider_id, received_at=now,
                                 reason="opt_in" if keyword == "start" else "opt_out")
            s.add(msg)
            s.flush()
            return InboundResult(msg.id, None, None, msg.reason)
    with transaction(engine) as s:
        calls = _open_calls(s, address)
        reading = rules.read_reply(text, [rules.OpenCall(c.letter, tuple(c.options))
                                          for c in calls])
        chosen = next((c for c in calls if c.letter == reading.letter), None)
        msg = InboundMessage(channel="sms", via=via, sender=address, recipient=recipient,
                             text=text[:2000], provider_id=provider_id, received_at=now,
                             campaign_id=chosen.campaign_id if chosen else None,
                             option=reading.option, reason=reading.reason)
        s.add(msg)
        if chosen is not None and reading.option is not None:
            _record(s, chosen, "sms", address, reading.option, now)
        s.flush()
        return InboundResult(msg.id, msg.campaign_id, msg.option, msg.reason)


def voice_answer(s: Session, campaign_id: str, delivery_id: int, digits: str,
                 now: dt.datetime | None = None) -> tuple[str, str] | None:
    """A key pressed during a call of an answerable campaign: ``(language, read-back
    sentence)`` once recorded, else ``None`` (not answerable, closed, not a valid key).
    Runs in the caller's transaction (``dispatch.calls``)."""
    call = s.get(AnswerCall, campaign_id)
    if call is None or call.status != "open" or not digits[:1].isdigit():
        return None
    option = int(digits[:1])
    if not 1 <= option <= len(call.options):
        return None
    delivery = s.get(Delivery, delivery_id)
    if delivery is None:
        return None
    _record(s, call, "voice", delivery.address, option, now or utcnow())
    lang = delivery.language if delivery.language in READ_BACK else "en"
    return lang, READ_BACK[lang] % {"label": call.options[option - 1]}


# ----------------------------------------------------------------------------- e-mail


def _serializer(secret: str) -> URLSafeSerializer:
    if not secret:
        raise ValueError("secret_key: an empty key cannot sign answer links")
    return URLSafeSerializer(secret, salt=_SALT, signer_kwargs={"digest_method": hashlib.sha256})


def answer_token(secret: str, campaign_id: str, address: str) -> str:
    """The signed token of an e-mail's answer link (campaign id and address, HMAC-SHA256)."""
    return str(_serializer(secret).dumps([campaign_id, address]))


def answer_link(base_url: str, secret: str, campaign_id: str, address: str) -> str:
    """``<base>/answer/<token>``: the page with the answer buttons."""
    return f"{base_url.rstrip('/')}/answer/{answer_token(secret, campaign_id, address)}"


def _read_token(secret: str, token: str) -> tuple[str, str]:
    try:
        campaign_id, address = _serializer(secret).loads(token)
    except (BadSignature, ValueError, TypeError):
        raise InputError("token", N_("this answer link is not valid"), code="answer_token") \
            from None
    return str(campaign_id), str(address)


def answer_page(engine: Engine, secret: str, token: str) -> dict[str, Any]:
    """What the answer page shows (GET changes nothing): ``{"options", "open",
    "answered" (1-based or None), "area_name", "text", "language"}``. Raises InputError
    (``token``) for a forged or broken link, LookupError for a campaign gone."""
    campaign_id, address = _read_token(secret, token)
    with read_transaction(engine) as s:
        call = s.get(AnswerCall, campaign_id)
        campaign = s.get(Campaign, campaign_id)
        if call is None or campaign is None:
            raise LookupError(campaign_id)
        key, _ = _respondent(s, _answers_for(s, campaign_id), address)
        answered = s.scalar(sa.select(CampaignAnswer.option).where(
            CampaignAnswer.campaign_id == _answers_for(s, campaign_id),
            CampaignAnswer.respondent == key))
        lang = s.scalar(sa.select(Delivery.language).where(
            Delivery.campaign_id == campaign_id, Delivery.channel == "email",
            Delivery.address == address)) or next(iter(campaign.texts))
        return {"options": list(call.options), "open": call.status == "open",
                "answered": answered, "area_name": campaign.area_name,
                "text": campaign.texts.get(lang) or next(iter(campaign.texts.values())),
                "language": lang}


def email_answer(engine: Engine, secret: str, token: str, option: int,
                 now: dt.datetime | None = None) -> dict[str, Any]:
    """Record the button pressed on the answer page (a POST). Returns ``{"option",
    "label", "possible_scanner"}``; ``possible_scanner``: within 10 s of the e-mail's
    delivery (``answers.is_possible_scanner``; kept, flagged on the board). Raises
    InputError (``token``; ``option`` out of range; ``closed``: the call is over)."""
    campaign_id, address = _read_token(secret, token)
    now = now or utcnow()
    with transaction(engine) as s:
        call = s.get(AnswerCall, campaign_id)
        if call is None:
            raise LookupError(campaign_id)
        if not 1 <= option <= len(call.options):
            raise InputError("option", N_("choose one of the answers"), code="answer_option")
        if call.status != "open":
            raise InputError("option", N_("this call is closed: answers are no longer "
                                          "taken"), code="answer_closed")
        sent = s.execute(sa.select(Delivery.final_at, Delivery.sent_at).where(
            Delivery.campaign_id == campaign_id, Delivery.channel == "email",
            Delivery.address == address)).first()
        when = (sent[0] or sent[1]) if sent else None
        if when is not None and when.tzinfo is None:
            when = when.replace(tzinfo=dt.UTC)
        scanner = rules.is_possible_scanner(
            (now - when).total_seconds() if when is not None else None)
        _record(s, call, "email", address, option, now, possible_scanner=scanner)
        return {"option": option, "label": call.options[option - 1],
                "possible_scanner": scanner}


def answer_options(engine: Engine, campaign_id: str) -> list[str]:
    """The answer options of a campaign ([] when it collects no answers)."""
    with read_transaction(engine) as s:
        call = s.get(AnswerCall, campaign_id)
        return list(call.options) if call is not None else []


def email_footer(base_url: str, secret: str, campaign_id: str, address: str, lang: str,
                 options: Sequence[str]) -> str:
    """The lines added to an answerable campaign's e-mail: "Answer (1 = Yes, 2 = No):
    <link>" in ``lang`` ("" without options). The link opens a page whose buttons POST
    (a mail scanner that follows links answers nothing)."""
    if not options:
        return ""
    listing = ", ".join(f"{i} = {label}" for i, label in enumerate(options, 1))
    word = EMAIL_ANSWER.get(lang, EMAIL_ANSWER["en"])
    return f"\n\n{word} ({listing}): {answer_link(base_url, secret, campaign_id, address)}\n"


# ----------------------------------------------------------------------------- quotas


def _quota_rules(call: AnswerCall) -> quota_rules.QuotaRules:
    return quota_rules.QuotaRules(quota=call.quota or 0,
                                  timeout=dt.timedelta(seconds=call.timeout_s),
                                  escalate_after=dt.timedelta(seconds=call.escalate_s),
                                  accept_option=call.accept_option)


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def _person(row: QuotaPerson) -> quota_rules.Person:
    return quota_rules.Person(
        key=row.key, position=row.position,
        channels=tuple(c for c in row.channels.split(",") if c), state=row.state,
        asked_at=_aware(row.asked_at), sent=[c for c in row.sent.split(",") if c],
        option=row.option, answered_at=_aware(row.answered_at), ended_at=_aware(row.ended_at),
        thanked_at=_aware(row.thanked_at))


def _store_person(row: QuotaPerson, p: quota_rules.Person) -> None:
    row.state, row.asked_at, row.sent = p.state, p.asked_at, ",".join(p.sent)
    row.option, row.answered_at, row.ended_at = p.option, p.answered_at, p.ended_at
    row.thanked_at = p.thanked_at


def _queue(s: Session, campaign: Campaign, channel: str, address: str, language: str) -> None:
    from tocsin.messages.sms import analyse

    segments = 0
    if channel == "sms":
        lang = language if language in campaign.texts else next(iter(campaign.texts))
        text = ((campaign.content or {}).get(lang) or {}).get("sms") or campaign.texts[lang]
        segments = analyse(text).segments
    exists = s.scalar(sa.select(Delivery.id).where(
        Delivery.campaign_id == campaign.id, Delivery.channel == channel,
        Delivery.address == address))
    if exists is None:
        s.add(Delivery(campaign_id=campaign.id, channel=channel, address=address,
                       language=language, state=QUEUED, priority=campaign.priority,
                       environment=campaign.environment, attempts=0, segments=segments,
                       cost_eur=Decimal(0)))


def _child(s: Session, parent: Campaign, texts: dict[str, str], purpose: str,
           created_by: str, now: dt.datetime) -> Campaign:
    """A campaign of ``parent``'s authority and kind to named people (no area, no CAP):
    a quota's thank-you, or a follow-up to those who did not answer."""
    child_id = uuid.uuid4().hex
    child = Campaign(
        id=child_id, authority_id=parent.authority_id, kind=parent.kind,
        environment=parent.environment, status="sending", priority=parent.priority,
        channels=",".join(c for c in parent.channel_list if c in ANSWER_CHANNELS),
        texts=texts, content={}, msg_type="Alert", scope=parent.scope,
        area=parent.area, area_name=parent.area_name, area_nis=parent.area_nis,
        cap_params=dict(parent.cap_params or {}),
        cap_identifier=f"{parent.cap_identifier}-{purpose}-{child_id[:8]}",
        sms_source=parent.sms_source, mail_from=parent.mail_from,
        voice_caller=parent.voice_caller, created_by=created_by, created_at=now,
        launched_at=now, fanout_done_at=now, targets=None)
    s.add(child)
    s.flush()
    return child


@dataclass
class QuotaRun:
    """What one :func:`run_quotas` did: actions per campaign
    (``[(kind, key, channel)]``, ``quota.Action``)."""

    actions: dict[str, list[tuple[str, str, str]]] = field(default_factory=dict)


def run_quotas(engine: Engine, now: dt.datetime | None = None) -> QuotaRun:
    """Advance every open quota call to ``now`` (``quota.step``): queue the deliveries
    of new asks and escalation steps, time out, and when filled queue the thank-you
    (a child campaign) to those asked who did not accept, and close the call. Safe to
    run from several workers: each call is updated under its row (PostgreSQL ``FOR
    UPDATE SKIP LOCKED``)."""
    now = now or utcnow()
    out = QuotaRun()
    with transaction(engine) as s:
        q = sa.select(AnswerCall).where(AnswerCall.status == "open",
                                        AnswerCall.quota.is_not(None))
        if s.get_bind().dialect.name == "postgresql":
            q = q.with_for_update(skip_locked=True)
        for call in s.scalars(q).all():
            campaign = s.get(Campaign, call.campaign_id)
            if campaign is None or campaign.status in ("cancelled", "stopped", "paused",
                                                       "scheduled", "pending_approval"):
                continue
            rows = {r.key: r for r in s.scalars(sa.select(QuotaPerson).where(
                QuotaPerson.campaign_id == call.campaign_id))}
            people = {k: _person(r) for k, r in rows.items()}
            actions = quota_rules.step(list(people.values()), _quota_rules(call), now)
            thanks: Campaign | None = None
            for a in actions:
                if a.kind == "send":
                    r = rows[a.key]
                    address = r.email if a.channel == "email" else r.mobile
                    if address:
                        _queue(s, campaign, a.channel, address, r.language)
                elif a.kind == "thank" and a.channel:
                    r = rows[a.key]
                    if thanks is None:
                        thanks = _child(s, campaign, {lang: call.thanks.get(lang) or
                                                      THANKS.get(lang, THANKS["en"])
                                                      for lang in campaign.texts},
                                        "thanks", "system", now)
                    address = r.email if a.channel == "email" else r.mobile
                    if address:
                        _queue(s, thanks, a.channel, address, r.language)
                elif a.kind in ("filled", "exhausted"):
                    call.status, call.closed_at = a.kind, now
            for k, p in people.items():
                _store_person(rows[k], p)
            if actions:
                out.actions[call.campaign_id] = [(a.kind, a.key, a.channel) for a in actions]
    return out


# ----------------------------------------------------------------------------- reading


def _check_read(s: Session, actor: Actor | None, campaign: Campaign,
                action: Action = Action.CAMPAIGN_READ) -> None:
    if actor is not None:
        owner = s.get(Authority, campaign.authority_id)
        assert owner is not None
        check_may(s, actor, action, owner, campaign.environment, campaign)


def _recipients(s: Session, campaign_id: str) -> dict[str, str | None]:
    """Respondent key -> name of everyone a campaign asked (its deliveries by SMS, voice
    and e-mail, or a quota's people asked so far)."""
    people = s.execute(sa.select(QuotaPerson.key, QuotaPerson.name).where(
        QuotaPerson.campaign_id == campaign_id)).all()
    if people:
        asked = s.scalars(sa.select(QuotaPerson.key).where(
            QuotaPerson.campaign_id == campaign_id, QuotaPerson.asked_at.is_not(None)))
        names = dict(people)
        return {k: names[k] for k in asked}
    from tocsin.subscribers.contact_models import Contact, ContactList

    addresses = list(s.scalars(sa.select(Delivery.address).where(
        Delivery.campaign_id == campaign_id,
        Delivery.channel.in_(ANSWER_CHANNELS)).distinct()))
    authority = s.scalar(sa.select(Campaign.authority_id).where(Campaign.id == campaign_id))
    contacts: dict[str, tuple[str, str | None]] = {}
    for start in range(0, len(addresses), 500):
        chunk = addresses[start:start + 500]
        for mobile, email, name in s.execute(
                sa.select(Contact.mobile, Contact.email, Contact.name)
                .join(ContactList, ContactList.id == Contact.list_id)
                .where(ContactList.authority_id == authority,
                       sa.or_(Contact.mobile.in_(chunk), Contact.email.in_(chunk)))):
            for a in (mobile, email):
                if a and a not in contacts:
                    contacts[a] = (str(mobile or email), name)
    out: dict[str, str | None] = {}
    for a in addresses:
        key, name = contacts.get(a, (a, None))
        out.setdefault(key, name)
    return out


def board(engine: Engine, campaign_id: str, actor: Actor | None) -> dict[str, Any]:
    """The live response board of an answerable campaign (its follow-up's answers count
    too). Raises LookupError (no such campaign, or it collects no answers) and
    ``access.Denied`` (``hidden`` for a campaign the actor may not read).

    Shape: ``{"campaign_id", "area_name", "status", "letter", "options": [{"n",
    "label", "count"}], "no_answer", "asked", "answered", "possible_scanners",
    "quota" (None or {"wanted", "accepted", "state"}), "follow_up_id", "updated_at",
    "answers": [{"name", "respondent", "option", "label", "channel", "answered_at",
    "possible_scanner"}] (newest first, at most 200), "unreadable": [{"name",
    "respondent", "text", "reason", "channel", "received_at"}] (the SMS replies from
    people the campaign asked that could not be read, newest first, at most 200;
    ``reason`` one of ``answers.REASONS``: :func:`_unreadable`)}``.
    """
    with audited_denials(engine), read_transaction(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(campaign_id)
        _check_read(s, actor, campaign)
        call = s.get(AnswerCall, campaign_id)
        if call is None:
            raise LookupError(campaign_id)
        rows = list(s.scalars(sa.select(CampaignAnswer).where(
            CampaignAnswer.campaign_id == campaign_id)
            .order_by(CampaignAnswer.answered_at.desc(), CampaignAnswer.id.desc())))
        asked = _recipients(s, campaign_id)
        counts = {i: 0 for i in range(1, len(call.options) + 1)}
        for r in rows:
            counts[r.option] = counts.get(r.option, 0) + 1
        answered_keys = {r.respondent for r in rows}
        unreadable = _unreadable(s, campaign_id, call)
        quota = None
        if call.quota is not None:
            accepted = sum(1 for r in rows if r.option == call.accept_option)
            quota = {"wanted": call.quota, "accepted": accepted, "state": call.status}
        return {
            "campaign_id": campaign_id, "area_name": campaign.area_name,
            "status": campaign.status, "call_status": call.status, "letter": call.letter,
            "options": [{"n": i, "label": label, "count": counts.get(i, 0)}
                        for i, label in enumerate(call.options, 1)],
            "no_answer": len([k for k in asked if k not in answered_keys]),
            "asked": len(asked), "answered": len(rows),
            "possible_scanners": sum(1 for r in rows if r.possible_scanner),
            "quota": quota, "follow_up_id": call.follow_up_id,
            "updated_at": iso_utc(utcnow()),
            "answers": [{"name": r.name or "", "respondent": r.respondent,
                         "option": r.option, "label": call.options[r.option - 1],
                         "channel": r.channel, "answered_at": iso_utc(_aware(r.answered_at)),
                         "possible_scanner": r.possible_scanner} for r in rows[:200]],
            "unreadable": unreadable,
        }


def _unreadable(s: Session, campaign_id: str, call: AnswerCall) -> list[dict[str, Any]]:
    """The SMS replies that gave no option (``InboundMessage.reason`` one of
    ``answers.REASONS``: kept, never guessed) sent by a number the campaign or its
    follow-up reached by SMS, between the opening of the call and its closing, that were
    not read as an answer to another campaign. Newest first, at most 200:
    ``[{"name", "respondent", "text", "reason", "channel", "received_at"}]``."""
    campaigns = [campaign_id, *([call.follow_up_id] if call.follow_up_id else [])]
    reached = sa.select(Delivery.id).where(
        Delivery.campaign_id.in_(campaigns), Delivery.channel == "sms",
        Delivery.address == InboundMessage.sender).exists()
    query = sa.select(InboundMessage).where(
        InboundMessage.option.is_(None), InboundMessage.reason.in_(rules.REASONS),
        sa.or_(InboundMessage.campaign_id.is_(None),
               InboundMessage.campaign_id.in_(campaigns)),
        InboundMessage.received_at >= call.created_at, reached)
    if call.closed_at is not None:
        query = query.where(InboundMessage.received_at <= call.closed_at)
    out = []
    for m in s.scalars(query.order_by(InboundMessage.received_at.desc(),
                                      InboundMessage.id.desc()).limit(200)):
        key, name = _respondent(s, campaign_id, m.sender)
        out.append({"name": name or "", "respondent": key, "text": m.text[:160],
                    "reason": m.reason, "channel": m.channel,
                    "received_at": iso_utc(_aware(m.received_at))})
    return out


def answers_csv(engine: Engine, campaign_id: str, actor: Actor | None) -> str:
    """The answers of a campaign as CSV (UTF-8, comma, header row): respondent, name,
    option number, option label, channel, answered at (UTC, RFC 3339), possible scanner.
    Everyone asked who has not answered follows with empty answer cells. Same errors
    as :func:`board`."""
    with audited_denials(engine), read_transaction(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(campaign_id)
        _check_read(s, actor, campaign, Action.REPORT_READ)
        call = s.get(AnswerCall, campaign_id)
        if call is None:
            raise LookupError(campaign_id)
        rows = list(s.scalars(sa.select(CampaignAnswer).where(
            CampaignAnswer.campaign_id == campaign_id).order_by(CampaignAnswer.answered_at,
                                                                CampaignAnswer.id)))
        asked = _recipients(s, campaign_id)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["respondent", "name", "option", "answer", "channel", "answered_at",
                "possible_scanner"])
    done = set()
    for r in rows:
        done.add(r.respondent)
        w.writerow([csv_cell(r.respondent), csv_cell(r.name), r.option,
                    csv_cell(call.options[r.option - 1]), r.channel,
                    iso_utc(_aware(r.answered_at)), "yes" if r.possible_scanner else ""])
    for key, name in asked.items():
        if key not in done:
            w.writerow([csv_cell(key), csv_cell(name), "", "", "", "", ""])
    return buf.getvalue()


def follow_up(engine: Engine, campaign_id: str, actor: Actor | None,
              texts: dict[str, str] | None = None, created_by: str = "cli") -> dict[str, Any]:
    """A new campaign to everyone the campaign asked who has not answered: same channels
    (but CAP), same options (answers to it count on the original's board), ``texts``
    or the original's. Returns ``{"campaign_id", "recipients"}``. Raises LookupError,
    ``access.Denied`` (the actor must be allowed to launch), InputError (``texts``:
    empty; ``campaign_id``: nobody left to ask, or a follow-up was already sent)."""
    now = utcnow()
    with audited_denials(engine), transaction(engine) as s:
        campaign = s.get(Campaign, campaign_id)
        if campaign is None:
            raise LookupError(campaign_id)
        _check_read(s, actor, campaign, Action.CAMPAIGN_LAUNCH)
        call = s.get(AnswerCall, campaign_id)
        if call is None:
            raise LookupError(campaign_id)
        if call.follow_up_id:
            raise InputError("campaign_id", N_("a follow-up was already sent"),
                             code="follow_up_sent")
        texts = {k: v.strip() for k, v in (texts or campaign.texts).items() if v and v.strip()}
        if not texts:
            raise InputError("texts", N_("write the follow-up message"), code="texts")
        answered = set(s.scalars(sa.select(CampaignAnswer.respondent).where(
            CampaignAnswer.campaign_id == campaign_id)))
        deliveries = s.execute(sa.select(Delivery.channel, Delivery.address, Delivery.language)
                               .where(Delivery.campaign_id == campaign_id,
                                      Delivery.channel.in_(ANSWER_CHANNELS))
                               .order_by(Delivery.id)).all()
        targets = []
        for channel, address, language in deliveries:
            key, _ = _respondent(s, campaign_id, address)
            if key not in answered:
                targets.append((channel, address, language))
        if not targets:
            raise InputError("campaign_id", N_("everyone asked has answered"),
                             code="follow_up_nobody")
        child = _child(s, campaign, texts, "followup", created_by, now)
        taken = list(s.scalars(sa.select(AnswerCall.letter).where(AnswerCall.status == "open")))
        letter = rules.next_letter(taken)
        child.content = {lang: {"sms": text + "\n" + rules.instructions(letter, call.options,
                                                                         lang)}
                         for lang, text in texts.items()}
        s.add(AnswerCall(campaign_id=child.id, authority_id=campaign.authority_id,
                         options=list(call.options), letter=letter, quota=None,
                         timeout_s=call.timeout_s, escalate_s=call.escalate_s,
                         accept_option=call.accept_option, status="open", thanks={},
                         created_at=now))
        for channel, address, language in targets:
            _queue(s, child, channel, address,
                   language if language in texts else next(iter(texts)))
        call.follow_up_id = child.id
        from tocsin.authorities.services import record_audit

        record_audit(s, created_by, "campaign.follow_up", target=child.id, source="web",
                     detail={"of": campaign_id, "recipients": len(targets)})
        return {"campaign_id": child.id, "recipients": len(targets)}


def close_calls(engine: Engine, now: dt.datetime | None = None) -> int:
    """Close the open calls whose campaign ended (cancelled, stopped) or expired; returns
    how many. Answers are no longer taken on a closed call."""
    now = now or utcnow()
    with transaction(engine) as s:
        rows = s.execute(sa.select(AnswerCall, Campaign.status, Campaign.expires_at)
                         .join(Campaign, Campaign.id == AnswerCall.campaign_id)
                         .where(AnswerCall.status == "open")).all()
        n = 0
        for call, status, expires in rows:
            ended = status in ("cancelled", "stopped")
            expired = expires is not None and (_aware(expires) or now) <= now
            if ended or expired:
                call.status, call.closed_at = "closed", now
                n += 1
        return n


def open_campaign_letters(engine: Engine) -> Sequence[str]:
    """Letters of the open calls (diagnostics)."""
    with read_transaction(engine) as s:
        return list(s.scalars(sa.select(AnswerCall.letter).where(AnswerCall.status == "open")))
