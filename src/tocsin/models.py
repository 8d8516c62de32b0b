"""Imports every table so that ``Base.metadata`` is complete (Alembic, tests)."""

from tocsin.authorities.models import (
    AuditEntry,
    AuditPersonal,
    Authority,
    LoginAttempt,
    User,
    UserInvitation,
    WebSession,
)
from tocsin.campaigns.models import Campaign
from tocsin.cap.models import CapGatewayKey
from tocsin.core.db import Base
from tocsin.dispatch.models import Delivery, DeliveryReceipt, SmsPartId
from tocsin.dispatch.voice_models import VoiceCall, VoiceCallEvent, VoiceRoute
from tocsin.messages.models import MessageTemplate
from tocsin.subscribers.models import Address, ContactPoint, Subscriber

__all__ = [
    "Address", "AuditEntry", "AuditPersonal", "Authority", "Base", "Campaign", "CapGatewayKey",
    "ContactPoint", "Delivery", "DeliveryReceipt", "LoginAttempt", "MessageTemplate",
    "SmsPartId", "Subscriber", "User", "UserInvitation", "VoiceCall", "VoiceCallEvent",
    "VoiceRoute", "WebSession",
]
