"""Notification context: customer messages by email, SMS, webhook or in the portal.

Topic ``notification.events`` (single writer: services/notification; key: order id, or
customer id for preferences) and ``notification.commands`` (preference changes from the
portal; key: customer id).
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from shared.schemas.common import INT32_MAX, Reason, Text, Value
from shared.schemas.registry import Message, command, event

Channel = Literal["email", "sms", "webhook", "portal"]


class NotificationEvent(Message):
    notification_id: Text
    order_id: Text
    customer_id: Text
    channel: Channel
    template: Text = Field(description="template name, e.g. order_shipped")
    recipient: Text = Field(description="address, phone number, URL or portal user")
    occurred_at: datetime


@event("notification.sent.v1")
class NotificationSent(NotificationEvent):
    """The provider accepted the message for delivery."""

    provider_message_id: Text | None = None


@event("notification.failed.v1")
class NotificationFailed(NotificationEvent):
    """The message could not be sent; ``permanent`` when retrying cannot help."""

    reason: Reason
    attempts: int = Field(ge=1, le=INT32_MAX)
    permanent: bool


class ChannelPreference(Value):
    """Whether a customer wants messages on one channel, and where."""

    channel: Channel
    enabled: bool
    destination: Text | None = Field(
        default=None, description="phone number or webhook URL when it is not the account's"
    )


@event("notification.preferences_updated.v1", subject="customer_id")
class PreferencesUpdated(Message):
    """A customer's channel preferences changed; the portal shows them from this event."""

    customer_id: Text
    channels: list[ChannelPreference]
    version: int = Field(ge=1, le=INT32_MAX)
    occurred_at: datetime


@command("notification.preferences_update.v1", subject="customer_id")
class UpdatePreferences(Message):
    """A customer (or an agent for them) sets channel preferences in the portal."""

    customer_id: Text
    channels: list[ChannelPreference]
    updated_by: Text
