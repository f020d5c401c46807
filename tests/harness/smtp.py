"""A real SMTP server on loopback (aiosmtpd): the mailbox Alertmanager's email receiver sends to.

It speaks SMTP with AUTH (PLAIN, over plain text: the client is on 127.0.0.1) and
accepts only the password it was given, so a test sees that the password file reached the
sender. Every accepted message is kept, parsed, for the test to read.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from harness.processes import free_port


@dataclass(frozen=True)
class Mail:
    sender: str
    recipients: tuple[str, ...]
    login: str
    message: EmailMessage

    def body(self, subtype: str = "plain") -> str:
        part = self.message.get_body(preferencelist=(subtype,))
        assert part is not None, f"the mail has no text/{subtype} part"
        content: str = part.get_content()  # type: ignore[attr-defined]
        return content


class SmtpReceiver:
    """`with SmtpReceiver(login, password) as smtp:` then `smtp.wait_for(predicate)`."""

    def __init__(self, login: str, password: str) -> None:
        self.port = free_port()
        self._login, self._password = login.encode(), password.encode()
        self._mails: list[Mail] = []
        self._changed = threading.Condition()
        self.refused_logins = 0
        # aiosmtpd warns about AUTH without TLS (pyproject.toml ignores exactly that warning):
        # on loopback there is nothing to sniff, and Alertmanager sends no STARTTLS here.
        self._controller = Controller(
            self,
            hostname="127.0.0.1",
            port=self.port,
            authenticator=self._authenticate,
            auth_required=True,
            auth_require_tls=False,
            # aiosmtpd's LOGIN challenges are "User Name"/"Password" (the SASL draft), which
            # Go's (Alertmanager's) LOGIN client refuses; real servers send "Username:". PLAIN
            # is what Alertmanager then uses, as with most mail servers.
            auth_exclude_mechanism=["LOGIN"],
        )

    @property
    def smarthost(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _authenticate(
        self, server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        if isinstance(data, LoginPassword) and (data.login, data.password) == (
            self._login,
            self._password,
        ):
            return AuthResult(success=True, auth_data=data.login.decode())
        self.refused_logins += 1
        return AuthResult(success=False, handled=False)

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        message = message_from_bytes(envelope.content or b"", policy=policy.default)
        assert isinstance(message, EmailMessage)
        mail = Mail(
            sender=envelope.mail_from or "",
            recipients=tuple(envelope.rcpt_tos),
            login=str(session.auth_data),
            message=message,
        )
        with self._changed:
            self._mails.append(mail)
            self._changed.notify_all()
        return "250 Message accepted for delivery"

    def wait_for(self, predicate: Callable[[Mail], bool], timeout: float = 30.0) -> Mail:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for mail in self._mails:
                    if predicate(mail):
                        return mail
                left = deadline - time.monotonic()
                if left <= 0:
                    subjects = [str(m.message["Subject"]) for m in self._mails]
                    raise AssertionError(f"no matching mail within {timeout}s; got {subjects}")
                self._changed.wait(left)

    def __enter__(self) -> SmtpReceiver:
        self._controller.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._controller.stop()
