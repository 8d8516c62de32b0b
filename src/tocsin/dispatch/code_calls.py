"""The voice provider's requests about code calls of the citizen portal (issue 10 point 2).

A landline's one-time code (or a mobile's, "call me instead") is said in a call placed
by ``dispatch.transactional.ChannelCodeSender.call``. When the call is answered, the
provider fetches ``POST /voice/codes/{code_id}/twiml?lang=fr`` and, when "1" is
pressed, posts ``…/gather?lang=fr&round=N``: both are answered here with the TwiML that
says the code (``channels.voice.code_twiml``), found again from the code's row
(``subscribers.verification.spoken_code``) while it is valid, unused and not locked;
else the call is hung up. The code is never in a URL, a request or a log line.

Each request carries its proof, ``X-Twilio-Signature`` (checked as for alert calls,
``dispatch.calls``); a wrong one is refused (403) and audited, and the same signed
request twice (a replay) is refused (409): signatures are kept in ``voice_call_event``
under the kinds ``code-twiml`` and ``code-gather`` (``call_id`` = the code's row id).
A code is said at most ``MAX_ROUNDS`` times in one call.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy.engine import Engine

from tocsin.channels.voice import (
    KEY_CODE_AGAIN,
    code_call_urls,
    code_twiml,
    hangup_twiml,
    signature_valid,
)
from tocsin.dispatch.calls import ProviderReply, _reject, _remember
from tocsin.subscribers.rules import LANGUAGES
from tocsin.subscribers.verification import PortalConfig, spoken_code

#: The most readings of a code in one call (the first and two "press 1" repeats).
MAX_ROUNDS = 3


def code_call_request(engine: Engine, secret: str, kind: str, code_id: int, url: str,
                      params: Mapping[str, str], signature: str, auth_token: str,
                      language: str, round_: int, *, source: str | None = None,
                      config: PortalConfig = PortalConfig()) -> ProviderReply:
    """Answer one provider request about the code call of ``portal_code`` ``code_id``.

    ``kind``: ``twiml`` (the call was answered) or ``gather`` (a key was pressed:
    ``Digits``); ``url``: the full URL as the provider signed it; ``signature`` its
    ``X-Twilio-Signature``, checked with ``auth_token``; ``language`` (fr, nl, de, en)
    and ``round_`` (the reading about to be said, from 1) come from that URL's query.
    Returns 403 (bad signature), 409 (replay), else 200 with TwiML: the code, or a
    hang-up when there is no valid code to say, another key, or ``MAX_ROUNDS`` readings.
    """
    if not signature_valid(auth_token, url, params, signature):
        _reject(engine, code_id, f"code-{kind}", "bad signature", source)
        return ProviderReply(403, "bad signature", "text/plain")
    if not _remember(engine, code_id, f"code-{kind}", params.get("CallStatus"), signature):
        _reject(engine, code_id, f"code-{kind}", "replayed request", source)
        return ProviderReply(409, "replayed request", "text/plain")
    lang = language if language in LANGUAGES else "en"
    if kind == "gather" and ((params.get("Digits") or "")[:1] != KEY_CODE_AGAIN
                             or round_ > MAX_ROUNDS):
        return ProviderReply(200, hangup_twiml())
    code = spoken_code(engine, secret, code_id, config)
    if code is None:
        return ProviderReply(200, hangup_twiml())
    base = url.split(f"/voice/codes/{code_id}/", 1)[0]
    gather = f"{code_call_urls(base, code_id, lang)['gather']}&round={max(1, round_) + 1}"
    return ProviderReply(200, code_twiml(code, lang, gather))
