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
from tocsin.campaigns.answer_models import (
    AnswerCall,
    CampaignAnswer,
    InboundMessage,
    QuotaPerson,
)
from tocsin.campaigns.location_models import LocationSend
from tocsin.campaigns.models import Campaign
from tocsin.cap.models import CapGatewayKey
from tocsin.core.db import Base
from tocsin.dispatch.models import (
    CampaignRetention,
    Delivery,
    DeliveryReceipt,
    ProviderRate,
    SmsMessage,
    SmsPartId,
)
from tocsin.dispatch.voice_models import VoiceCall, VoiceCallEvent, VoiceRoute
from tocsin.geo.address_models import (
    AddressImport,
    AddressPlace,
    AddressPoint,
    AddressStage,
    AddressStreet,
)
from tocsin.geo.models import Cell, CellImport
from tocsin.messages.models import MessageTemplate
from tocsin.subscribers.contact_models import (
    Contact,
    ContactColumnMapping,
    ContactGroup,
    ContactGroupMember,
    ContactList,
    ContactUpload,
)
from tocsin.subscribers.models import Address, ContactPoint, Subscriber
from tocsin.subscribers.portal_models import (
    AddressDetail,
    CitizenSession,
    PortalCode,
    PortalSend,
    SubscriberConsent,
    SubscriberProfile,
    SubscriberReminder,
)

__all__ = [
    "Address", "AuditEntry", "AuditPersonal", "Authority", "Base", "Campaign", "CapGatewayKey",
    "Cell", "CellImport", "LocationSend",
    "ContactPoint", "Delivery", "DeliveryReceipt", "LoginAttempt", "MessageTemplate",
    "ProviderRate", "SmsMessage", "SmsPartId", "Subscriber", "User", "UserInvitation",
    "VoiceCall", "VoiceCallEvent", "VoiceRoute", "WebSession",
    "Contact", "ContactColumnMapping", "ContactGroup", "ContactGroupMember", "ContactList",
    "ContactUpload",
    "AddressDetail", "CitizenSession", "PortalCode", "PortalSend", "SubscriberConsent",
    "SubscriberProfile",
    "AnswerCall", "CampaignAnswer", "InboundMessage", "QuotaPerson",
    "CampaignRetention", "SubscriberReminder",
    "AddressImport", "AddressPlace", "AddressPoint", "AddressStage", "AddressStreet",
]
