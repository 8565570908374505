"""The providers of the registry in :mod:`yunying.notify`: outbox, SMTP (smtplib), HTTP SMS gateway (httpx)."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import httpx

from yunying.notify import DeliveryError, Outgoing
from yunying.settings import Settings

HTTP_TIMEOUT_S = 10.0
REF_KEYS = ("id", "message_id", "messageId", "BizId", "sid", "msgid")  # where gateways put their message id


class OutboxNotifier:
    """Delivers into the ``notification`` table itself: the message is marked sent, nothing leaves the house."""

    name = "outbox"
    channels = frozenset({"sms", "email"})

    def send(self, message: Outgoing) -> str:
        return "outbox"


class SmtpNotifier:
    """E-mail through an SMTP server (``smtp_*`` settings): STARTTLS unless turned off, login when a user is set."""

    name = "smtp"
    channels = frozenset({"email"})

    def __init__(self, host: str, port: int, sender: str, user: str = "", password: str = "",
                 starttls: bool = True) -> None:
        self.host, self.port, self.sender = host, port, sender
        self.user, self._password, self.starttls = user, password, starttls

    def __repr__(self) -> str:
        return f"SmtpNotifier({self.host}:{self.port})"  # never the password

    @classmethod
    def from_settings(cls, settings: Settings) -> SmtpNotifier:
        if not settings.smtp_host or not settings.smtp_from:
            raise ValueError("the smtp notification provider needs YUNYING_SMTP_HOST and YUNYING_SMTP_FROM")
        return cls(settings.smtp_host, settings.smtp_port, settings.smtp_from, settings.smtp_user,
                   settings.smtp_password, settings.smtp_starttls)

    def send(self, message: Outgoing) -> str:
        mail = EmailMessage()
        mail["From"], mail["To"] = self.sender, message.recipient
        mail["Subject"] = message.subject or "云影 Yunying"
        mail.set_content(message.body)
        try:
            with smtplib.SMTP(self.host, self.port, timeout=HTTP_TIMEOUT_S) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self._password)
                refused = smtp.send_message(mail)
        except (smtplib.SMTPException, OSError) as exc:
            raise DeliveryError(f"SMTP: {type(exc).__name__}") from None  # the exception text may name the recipient
        if refused:
            raise DeliveryError("SMTP: recipient refused")
        return str(mail.get("Message-ID") or "smtp")


def _fill(template: Any, values: dict[str, str]) -> Any:
    """Replace ``{to}`` / ``{text}`` in every string of the parsed template (never in raw JSON text)."""
    if isinstance(template, str):
        for key, value in values.items():
            template = template.replace("{" + key + "}", value)
        return template
    if isinstance(template, list):
        return [_fill(item, values) for item in template]
    if isinstance(template, dict):
        return {k: _fill(v, values) for k, v in template.items()}
    return template


class HttpSmsNotifier:
    """SMS through an HTTP gateway: POST of the JSON template with ``{to}``/``{text}`` filled, 2xx = taken."""

    name = "http"
    channels = frozenset({"sms"})

    def __init__(self, url: str, body_template: str, auth: str = "", client: httpx.Client | None = None) -> None:
        try:
            self.template = json.loads(body_template)
        except json.JSONDecodeError:
            raise ValueError("YUNYING_SMS_HTTP_BODY is not JSON") from None
        self.url, self._auth = url, auth
        self._client = client or httpx.Client(timeout=HTTP_TIMEOUT_S)

    def __repr__(self) -> str:
        return f"HttpSmsNotifier({self.url})"  # never the authorization

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpSmsNotifier:
        if not settings.sms_http_url:
            raise ValueError("the http notification provider needs YUNYING_SMS_HTTP_URL")
        return cls(settings.sms_http_url, settings.sms_http_body, settings.sms_http_auth)

    def send(self, message: Outgoing) -> str:
        body = _fill(self.template, {"to": message.recipient, "text": message.body})
        headers = {"Authorization": self._auth} if self._auth else {}
        try:
            response = self._client.post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"SMS gateway: {type(exc).__name__}") from None
        if not response.is_success:
            raise DeliveryError(f"SMS gateway answered {response.status_code}")
        try:
            answer = response.json()
        except ValueError:
            return "http"
        if isinstance(answer, dict):
            for key in REF_KEYS:
                if answer.get(key):
                    return str(answer[key])[:200]
        return "http"
