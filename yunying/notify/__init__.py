"""Notifications (SMS, e-mail): a small ``Notifier`` protocol, a registry of providers, and the message table.

Every message is a ``notification`` row first (:mod:`yunying.notify.service`): channel, purpose, the
recipient masked for display and encrypted with the field cipher, body, state ``queued → sent |
failed``. A provider only moves one message out of the house:

======== ================================================== ==============
name     what it does                                       channels
======== ================================================== ==============
outbox   nothing: the table is the delivery (development,   sms, email
         tests, ``/ui/admin/outbox``)
smtp     e-mail through ``smtplib`` (STARTTLS, login)       email
http     SMS through an HTTP gateway (JSON body template)   sms
======== ================================================== ==============

Providers are chosen by ``notify_provider`` (SMS) and ``notify_email_provider`` (e-mail); an unknown
name or a provider missing its settings fails at start-up with a sentence naming the setting.
Recipients and bodies are never logged (bodies may hold one-time codes).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from yunying.settings import Settings

CHANNELS = ("sms", "email")


@dataclass(frozen=True)
class Outgoing:
    """One message as a provider sees it (the recipient in clear, only in memory)."""

    channel: str  # sms | email
    recipient: str  # phone digits or e-mail address
    body: str
    subject: str = ""  # e-mail only


class DeliveryError(RuntimeError):
    """The provider did not take the message; the text (no recipient, no body) goes into ``notification.error``."""


class Notifier(Protocol):
    """Send one message; return the provider's reference (message id), or raise :class:`DeliveryError`."""

    name: str
    channels: frozenset[str]

    def send(self, message: Outgoing) -> str: ...


def _outbox(settings: Settings) -> Notifier:
    from yunying.notify.providers import OutboxNotifier

    return OutboxNotifier()


def _smtp(settings: Settings) -> Notifier:
    from yunying.notify.providers import SmtpNotifier

    return SmtpNotifier.from_settings(settings)


def _http(settings: Settings) -> Notifier:
    from yunying.notify.providers import HttpSmsNotifier

    return HttpSmsNotifier.from_settings(settings)


PROVIDERS: dict[str, Callable[[Settings], Notifier]] = {"outbox": _outbox, "smtp": _smtp, "http": _http}


@dataclass(frozen=True)
class Notifiers:
    """The provider of each channel."""

    by_channel: dict[str, Notifier]

    def for_channel(self, channel: str) -> Notifier:
        return self.by_channel[channel]


def make_notifiers(settings: Settings) -> Notifiers:
    """The configured providers; ValueError naming the setting when one cannot work."""
    chosen = {"sms": settings.notify_provider, "email": settings.notify_email_provider}
    by_channel: dict[str, Notifier] = {}
    for channel, name in chosen.items():
        if name not in PROVIDERS:
            raise ValueError(f"unknown notification provider {name!r} (known: {', '.join(PROVIDERS)})")
        notifier = PROVIDERS[name](settings)
        if channel not in notifier.channels:
            setting = "YUNYING_NOTIFY_PROVIDER" if channel == "sms" else "YUNYING_NOTIFY_EMAIL_PROVIDER"
            raise ValueError(f"{setting}={name}: that provider does not send {channel}")
        by_channel[channel] = notifier
    return Notifiers(by_channel)


def mask_phone(digits: str) -> str:
    """``13812345678`` → ``138****5678`` (short numbers keep only their last two digits)."""
    if len(digits) >= 7:
        return digits[:3] + "****" + digits[-4:]
    return "*" * max(0, len(digits) - 2) + digits[-2:]


def mask_email(address: str) -> str:
    """``zhang.san@example.cn`` → ``z***@example.cn``."""
    local, _, domain = address.partition("@")
    return (local[:1] + "***@" + domain) if domain else "***"


def mask(channel: str, recipient: str) -> str:
    return mask_phone(recipient) if channel == "sms" else mask_email(recipient)
