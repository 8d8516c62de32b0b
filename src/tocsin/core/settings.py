"""One typed Settings object, read from environment variables ``TOCSIN_*``."""

from __future__ import annotations

import ipaddress
import os
import sys
from functools import lru_cache
from pathlib import Path

from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Deployment settings.

    Every field is read from ``TOCSIN_<FIELD>`` (case-insensitive), e.g.
    ``TOCSIN_DATABASE_URL``. Provider URLs left empty mean "no live provider
    for that channel": live campaigns on it are refused, simulation campaigns
    always use the built-in simulators.
    """

    model_config = SettingsConfigDict(env_prefix="TOCSIN_", extra="ignore",
                                      populate_by_name=True)

    database_url: str = Field(
        default="", description="SQLAlchemy URL; empty = SQLite <var_dir>/tocsin.db"
    )
    var_dir: Path = Field(default_factory=lambda: default_var_dir(),
                          description="Embedded-storage directory (absolute; see "
                                      "default_var_dir)")

    # Live providers (F21, F23). Space-separated smpp:// URLs; one smtp(s):// URL.
    smpp_url: str = ""
    smtp_url: str = ""

    # Sender identity (F20).
    # SMPP source_addr: a short code (digits) or an alphanumeric sender of at most 11
    # characters (3GPP TS 23.040 §9.1.2.5, TP-OA alphanumeric).
    sms_source: str = Field(default="1789", pattern=r"^(\d{3,15}|[A-Za-z0-9 ]{1,11})$")
    mail_from: str = Field(default="no-reply@alert.tocsin.example",
                           pattern=r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$")
    # CAP 1.2 §3.2.1: sender without spaces, commas or restricted characters.
    cap_sender: str = Field(default="alert@tocsin.example", pattern=r"^[^\s,<&]+$")
    # Base of every absolute link the CLI, e-mails and feeds print (unsubscribe links,
    # CAP URLs). Empty: the web uses each request's own base URL; the CLI and the
    # worker fall back to LOCAL_PUBLIC_URL. ``TOCSIN_PUBLIC_BASE_URL`` is the older name.
    public_base_url: str = Field(
        default="", validation_alias=AliasChoices("TOCSIN_PUBLIC_URL", "TOCSIN_PUBLIC_BASE_URL"),
        pattern=r"^(https?://[^\s/?#]+(/[^\s?#]*)?)?$",
        description="Public base URL, e.g. https://alert.example.be (no query, no fragment)")
    voice_caller: str = Field(default="+3278151789", pattern=r"^\+[1-9]\d{6,14}$",
                              description="Voice calls' caller number, E.164 (F20)")
    # DKIM (RFC 6376) of every outgoing e-mail; all three empty = unsigned.
    dkim_domain: str = Field(default="", description="DKIM d= domain (that of mail_from)")
    dkim_selector: str = Field(default="", description="DKIM s= selector (DNS TXT at "
                                                       "<selector>._domainkey.<domain>)")
    dkim_private_key_file: str = Field(default="", description="PEM RSA private key file")

    # Tariffs (F29), EUR excl. VAT.
    sms_segment_price_eur: str = "0.055"
    voice_minute_price_eur: str = Field(
        default="0.055", description="EUR per started minute of an answered voice call (F29)"
    )
    sms_max_segments: int = Field(default=6, ge=1, le=255,
                                  description="Most SMS segments per message (F14)")

    # Web.
    secret_key: str = Field(default="", description="Cookie signing key; empty = per-var-dir key")
    map_tile_url: str = Field(default="", description="Optional raster tile URL template")
    trusted_proxies: str = Field(
        default="", description="Reverse proxies whose X-Forwarded-For / Forwarded headers "
                                "name the client: CIDR list, comma or space separated; "
                                "empty = trust no forwarded header")
    session_idle_timeout_s: int = Field(
        default=3600, ge=60, le=86_400,
        description="A web session ends after this many seconds without a request")
    session_lifetime_s: int = Field(
        default=12 * 3600, ge=300, le=7 * 86_400,
        description="A web session ends this many seconds after login, whatever happens")
    feed_cache_seconds: float = Field(
        default=1.0, ge=0, le=60,
        description="How long one process reuses a built CAP feed page (0 = never)")

    # CAP publishing and gateway (F24, F36).
    cap_signing_key_file: Path | None = Field(
        default=None, description="PEM RSA private key: sign published CAP (XML-DSig); "
                                  "empty = unsigned")
    cap_signing_cert_file: Path | None = Field(
        default=None, description="PEM X.509 certificate of that key, embedded in the signature")
    webhook_allow_insecure: bool = Field(
        default=False, description="Also allow http:// webhooks to loopback addresses "
                                   "(tests and local simulators only; never in production)")

    # Voice calls (F22) through a Twilio-compatible Calls API (Twilio, Somleng…); see the
    # README "Voice calls". Empty voice_url = no live voice provider.
    voice_url: str = Field(default="", pattern=r"^(https?://[^\s?#]+)?$",
                           description="Base URL of the Calls API, e.g. https://api.twilio.com")
    voice_account_sid: str = Field(default="", description="Account SID (basic-auth user)")
    voice_auth_token: str = Field(default="", description="Auth token (basic-auth password, "
                                                          "and the key of X-Twilio-Signature)")
    voice_callback_url: str = Field(
        default="", pattern=r"^(https?://[^\s?#]+)?$",
        description="Base URL the provider reaches Tocsin's /voice/… routes at (TwiML, status "
                    "callbacks); empty = TOCSIN_PUBLIC_URL")
    # Answers to group messages by SMS through the provider's webhook (issue 10): the shared
    # secret it sends in X-Tocsin-Secret (or Authorization: Bearer). Empty = webhook off.
    inbound_sms_secret: str = Field(default="", description="Shared secret of POST "
                                    "/inbound/sms (empty: the webhook answers 404)")
    voice_calls_per_minute: int = Field(default=600, ge=1, le=100_000,
                                        description="Most call starts in any sliding 60 s")
    voice_trunk: int = Field(default=200, ge=1, le=100_000,
                             description="Most simultaneous calls (trunk size)")
    voice_rate_margin_seconds: float = Field(
        default=0.1, ge=0, le=10, description="A start stays counted this much longer than "
                                              "60 s after it reached the provider, for "
                                              "clocks that differ between workers")
    voice_retries: int = Field(default=2, ge=0, le=10,
                               description="More attempts after busy / no answer / failed")
    voice_retry_seconds: float = Field(default=300.0, ge=0, le=86_400,
                                       description="Seconds between attempts at one number")
    voice_ring_timeout: int = Field(default=30, ge=5, le=600,
                                    description="Seconds a call rings before no-answer")
    voice_machine_detection: str = Field(
        default="DetectMessageEnd", pattern=r"^(|Enable|DetectMessageEnd)$",
        description="Answering-machine detection (empty = off)")
    voice_call_max_seconds: int = Field(
        default=900, ge=60, le=86_400,
        description="A call with no final status after this long is given up")
    voice_batch_size: int = Field(default=50, ge=1, le=10_000,
                                  description="Voice deliveries one worker claims at a time")
    voice_simulator_time_scale: float = Field(
        default=0.02, gt=0, le=1,
        description="Simulation: real seconds per simulated second (rings, speech, retry "
                    "delays); 1 = real time")

    # Location-based channels (F18, F31; issue 11). Simulation campaigns always use the
    # built-in simulators (one LB-SMS operator per synthetic operator, one CBC).
    lbsms_operators: str = Field(
        default="", description="Live LB-SMS operator APIs: op1=https://…,op2=https://… "
                                "(empty = no live location-based SMS)")
    lbsms_callback_secret: str = Field(
        default="", description="HMAC secret of the operators' signed callbacks (key id k1)")
    lbsms_callback_url: str = Field(
        default="", pattern=r"^(https?://[^\s?#]+)?$",
        description="Base URL the operators reach Tocsin's /hooks/lbsms/… at; empty = "
                    "TOCSIN_PUBLIC_URL")
    cbc_url: str = Field(default="", pattern=r"^(https?://[^\s?#]+)?$",
                         description="Live CBC: the ECBE API up to /api/ecbe/v1, or (protocol "
                                     "cap) the URL CAP documents are POSTed to (empty = no "
                                     "live cell broadcast)")
    cbc_protocol: str = Field(default="ecbe", pattern=r"^(ecbe|cap)$",
                              description="Live CBC's interface: ecbe (osmo-cbc REST) or cap "
                                          "(CAP 1.2 Alert/Update/Cancel POSTed to TOCSIN_CBC_URL)")
    cbc_username: str = Field(default="", pattern=r"^[^\s:]{0,128}$",
                              description="CAP CBC: HTTP basic-auth user (empty = none)")
    cbc_password: str = Field(default="", description="CAP CBC: HTTP basic-auth password")
    cbc_token: str = Field(default="", pattern=r"^[A-Za-z0-9._~+/=-]{0,4096}$",
                           description="CAP CBC: bearer token, when no basic-auth user is set")
    cbc_name: str = Field(default="tocsin", pattern=r"^[A-Za-z0-9_.-]{1,64}$",
                          description="cbe_name Tocsin gives the CBC")
    cbc_allow_plmn_wide: bool = Field(
        default=False, description="Live: let a regional alert go network-wide on an ECBE CBC "
                                   "(it has no regional scope)")
    cb_repetition_period: int = Field(default=60, ge=1, le=4095,
                                      description="Seconds between cell-broadcast repetitions")
    location_not_after_minutes: int = Field(
        default=60, ge=5, le=1440,
        description="LB-SMS: nothing is sent later than this after launch (or the expiry)")
    lbsms_simulator_rate_per_s: float = Field(
        default=200.0, gt=0, description="Simulation: SMS per second of each simulated operator")
    lbsms_simulator_tick_s: float = Field(
        default=1.0, gt=0, le=10, description="Simulation: seconds between progress callbacks")
    lbsms_simulator_resolve_delay_s: float = Field(
        default=1.0, ge=0, le=60, description="Simulation: seconds to resolve the area to cells")

    # Dispatch.
    lease_seconds: float = 30.0
    batch_size: int = 500
    commit_batch: int = Field(
        default=100, ge=1, le=10_000,
        description="SMS / e-mail outcomes written per transaction by a send loop: a worker "
                    "killed mid-send leaves at most this many per loop to be sent again")
    # Send-time estimates (issue 13): how many ``tocsin worker`` processes the deployment
    # runs and what one of them sends per second (measured: docs/performance.md).
    workers: int = Field(default=1, ge=1, le=1000,
                         description="Worker processes running (for send-time estimates)")
    worker_sms_per_second: float = Field(
        default=1600.0, gt=0, description="SMS one worker submits per second (estimates)")
    worker_email_per_second: float = Field(
        default=2400.0, gt=0, description="E-mail recipients one worker sends per second "
                                          "(estimates)")

    # Retention (issue 10 point 5, docs/decisions/0023): per-recipient data of finished
    # campaigns is replaced by keyed pseudonyms after this many days; the yearly
    # "is this still correct?" e-mail to registered citizens.
    retention_days: int = Field(
        default=30, ge=1, le=3650,
        description="Days after a campaign finished before its recipients' numbers, "
                    "addresses and answers are pseudonymised")
    retention_batch: int = Field(default=1000, ge=1, le=100_000,
                                 description="Delivery rows pseudonymised per transaction")
    privacy_check_seconds: float = Field(
        default=3600.0, ge=1, le=86_400,
        description="How often a worker runs the retention job and the yearly reminders")
    reminder_max_per_run: int = Field(
        default=200, ge=0, le=100_000,
        description="Most yearly reminder e-mails sent by one run (0 = none)")

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        # Resolved once, when read: a later chdir never moves the database.
        return value.expanduser().resolve()

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: str) -> str:
        for part in value.replace(",", " ").split():
            try:
                ipaddress.ip_network(part, strict=False)
            except ValueError:
                raise ValueError(f"{part!r} is not an IP address or CIDR network") from None
        return value

    def trusted_proxy_networks(self) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        """``trusted_proxies`` parsed: the networks whose forwarded headers are believed."""
        return tuple(ipaddress.ip_network(p, strict=False)
                     for p in self.trusted_proxies.replace(",", " ").split())

    def resolved_database_url(self) -> str:
        """The database URL, defaulting to SQLite (WAL) at ``<var_dir>/tocsin.db``.

        Pure: creates no folder and no file (only ``tocsin db init``, ``db upgrade``
        and ``demo`` create the embedded database).
        """
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.var_dir / 'tocsin.db'}"

    def public_url(self) -> str:
        """The base of absolute links printed outside a web request (CLI, e-mails):
        ``TOCSIN_PUBLIC_URL`` without its trailing slash, else ``LOCAL_PUBLIC_URL``."""
        return self.public_base_url or LOCAL_PUBLIC_URL


#: Base of links when ``TOCSIN_PUBLIC_URL`` is unset and no request says better: the
#: address ``tocsin serve`` and ``make demo`` listen on by default.
LOCAL_PUBLIC_URL = "http://127.0.0.1:8000"


def default_var_dir() -> Path:
    """Where the embedded database lives by default, whatever the current folder.

    From a source checkout (the package imported from ``<checkout>/src/tocsin`` and
    ``<checkout>/pyproject.toml`` naming the project ``tocsin``, as in ``make demo``):
    ``<checkout>/var``. Installed with pip: the user's data folder,
    ``$XDG_DATA_HOME/tocsin`` (default ``~/.local/share/tocsin``) on Linux,
    ``~/Library/Application Support/tocsin`` on macOS, ``%LOCALAPPDATA%\\tocsin`` on
    Windows. See docs/decisions/0008-embedded-database-location.md.
    """
    checkout = Path(__file__).resolve().parents[3]
    pyproject = checkout / "pyproject.toml"
    if (checkout / "src" / "tocsin").is_dir() and pyproject.is_file():
        try:
            if 'name = "tocsin"' in pyproject.read_text(encoding="utf-8"):
                return checkout / "var"
        except OSError:
            pass
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "tocsin"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings (read once; tests call ``get_settings.cache_clear()``).

    Raises ``SettingsError`` naming the environment variable when one is invalid.
    """
    try:
        return Settings()
    except ValidationError as exc:
        problems = "; ".join(
            f"TOCSIN_{str(err['loc'][0]).upper() if err['loc'] else '?'}: {err['msg']}"
            for err in exc.errors())
        raise SettingsError(problems) from None


class SettingsError(RuntimeError):
    """An invalid ``TOCSIN_*`` environment variable; the message names it and says why."""
