"""yunying.notify against real peers: an aiosmtpd SMTP server and a local HTTP SMS gateway (both databases).

Proves: the SMTP provider delivers a message the server receives; the HTTP provider posts the filled
JSON template with the Authorization header and keeps the gateway's message id; after a real
provider took a message its one-time code is cut from the stored body; a gateway error keeps the
message queued and after three attempts it is failed; the recipient is stored encrypted and masked.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from tests.cloudfilm.conftest import PHONE_1, PHONE_1_MASKED
from tests.support.server import free_port
from yunying.compose import Archive
from yunying.index.models import Notification
from yunying.notify import Notifiers, make_notifiers
from yunying.notify import service as notify
from yunying.settings import Settings


class _Mailbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


class _Gateway(BaseHTTPRequestHandler):
    received: list[tuple[dict[str, Any], str]] = []
    fail = False

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((body, self.headers.get("Authorization", "")))
        status, answer = (503, {"error": "busy"}) if type(self).fail else (200, {"BizId": f"gw-{len(self.received)}"})
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def peers() -> Iterator[tuple[Controller, _Mailbox, ThreadingHTTPServer]]:
    mailbox = _Mailbox()
    smtp = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    gateway = ThreadingHTTPServer(("127.0.0.1", 0), _Gateway)
    threading.Thread(target=gateway.serve_forever, daemon=True).start()
    yield smtp, mailbox, gateway
    smtp.stop()
    gateway.shutdown()


def test_smtp_and_http_providers_deliver_and_the_table_tells(cf_archive: Archive, tmp_path: Any,
                                                             peers: tuple[Controller, _Mailbox, ThreadingHTTPServer]) -> None:
    smtp, mailbox, gateway = peers
    settings = Settings(data_dir=tmp_path, notify_provider="http", notify_email_provider="smtp",
                        smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_from="noreply@yunying.test", smtp_starttls=False,
                        sms_http_url=f"http://127.0.0.1:{gateway.server_address[1]}/send",
                        sms_http_body='{"phone": "{to}", "content": "{text}", "sign": "云影"}',
                        sms_http_auth="Bearer gateway-secret")
    notifiers: Notifiers = make_notifiers(settings)
    archive, cipher = cf_archive, cf_archive.fields
    assert cipher is not None
    with archive.sessions() as session:
        sms = notify.enqueue(session, cipher, channel="sms", purpose="cloudfilm-code", recipient=PHONE_1,
                             body='验证码 493817 "quoted"')
        mail = notify.enqueue(session, cipher, channel="email", purpose="test", recipient="zhang.san@example.cn",
                              body="hello", subject="云影 test")
        session.commit()
        sms_id, mail_id = sms.id, mail.id
    outcomes = notify.deliver_pending(archive.sessions, notifiers, cipher)
    assert {(o.id, o.state) for o in outcomes} == {(sms_id, "sent"), (mail_id, "sent")}

    body, auth = _Gateway.received[-1]
    assert body == {"phone": PHONE_1, "content": '验证码 493817 "quoted"', "sign": "云影"} and auth == "Bearer gateway-secret"
    sender, recipients, raw = mailbox.messages[-1]
    mail_message = message_from_bytes(raw)
    assert sender == "noreply@yunying.test" and recipients == ["zhang.san@example.cn"]
    assert mail_message.get_payload(decode=True).decode().strip() == "hello"  # type: ignore[union-attr]

    with archive.sessions() as session:
        stored = session.get(Notification, sms_id)
        assert stored is not None and stored.state == "sent" and stored.provider == "http"
        assert stored.provider_ref == f"gw-{len(_Gateway.received)}" and "493817" not in stored.body
        assert stored.recipient_masked == PHONE_1_MASKED and PHONE_1 not in stored.recipient_enc
        assert cipher.decrypt(stored.recipient_enc, notify.RECIPIENT_CONTEXT) == PHONE_1

    # The gateway fails: queued again, then failed after the third attempt; the admin list shows it.
    _Gateway.fail = True
    try:
        with archive.sessions() as session:
            failing = notify.enqueue(session, cipher, channel="sms", purpose="cloudfilm-link", recipient=PHONE_1,
                                     body="link", institution_id=None)
            session.commit()
            failing_id = failing.id
        states = [notify.deliver(archive.sessions, notifiers, cipher, failing_id).state for _ in range(4)]
    finally:
        _Gateway.fail = False
    assert states == ["queued", "queued", "failed", "skipped"]
    with archive.sessions() as session:
        row = session.execute(select(Notification).where(Notification.id == failing_id)).scalar_one()
        assert row.attempts == 3 and row.error == "SMS gateway answered 503"
    listed = notify.list_messages(archive.sessions, None, everything=True)
    assert [m.id for m in listed][:3] == [failing_id, mail_id, sms_id] and listed[0].recipient == PHONE_1_MASKED


def test_unknown_or_incomplete_providers_fail_at_start(tmp_path: Any) -> None:
    with pytest.raises(ValueError, match="YUNYING_SMS_HTTP_URL"):
        make_notifiers(Settings(data_dir=tmp_path, notify_provider="http"))
    with pytest.raises(ValueError, match="does not send sms"):
        make_notifiers(Settings(data_dir=tmp_path, notify_provider="smtp", smtp_host="h", smtp_from="a@b"))
