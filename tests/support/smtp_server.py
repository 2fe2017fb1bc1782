"""A real SMTP server for the email sink's tests: aiosmtpd (PyPI) on a loopback port.

Each accepted mail is appended to --out as one JSON line (envelope sender, recipients,
whether the session was TLS and authenticated, and the raw message). Options: STARTTLS
with --tls-cert/--tls-key (then required; with --implicit-tls, TLS from the first
byte instead), AUTH PLAIN/LOGIN against --auth user:pass
(only over TLS), and --transient N to answer the first N mails 451 (try again later).
Prints "ready" once it listens.
"""

import argparse
import email
import email.policy
import json
import ssl
import sys
import time

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--tls-cert")
    p.add_argument("--tls-key")
    p.add_argument("--auth")
    p.add_argument("--implicit-tls", action="store_true")
    p.add_argument("--transient", type=int, default=0)
    a = p.parse_args()
    state = {"transient": a.transient}

    class Handler:
        async def handle_DATA(self, server, session, envelope):
            if state["transient"] > 0:
                state["transient"] -= 1
                return "451 4.3.0 Try again later"
            msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
            plain = msg.get_body(("plain",))
            html = msg.get_body(("html",))
            record = {
                "subject": str(msg["subject"]),
                "header_to": str(msg["to"]),
                "content_type": msg.get_content_type(),
                "text": plain.get_content() if plain else None,
                "html": html.get_content() if html else None,
                "at": time.time(),
                "from": envelope.mail_from,
                "to": envelope.rcpt_tos,
                "tls": session.ssl is not None
                or server.transport.get_extra_info("ssl_object") is not None,
                "authenticated": bool(session.authenticated),
                "data": envelope.original_content.decode("utf-8", "replace"),
            }
            with open(a.out, "a", encoding="utf-8") as f:
                f.write(json.dumps(record) + "\n")
            return "250 OK"

    def authenticator(server, session, envelope, mechanism, auth_data):
        if not a.auth or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = a.auth.split(":", 1)
        ok = auth_data.login.decode() == user and auth_data.password.decode() == password
        return AuthResult(success=ok, handled=False)

    kwargs = {}
    server_kwargs = {}
    if a.tls_cert:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.implicit_tls:
            server_kwargs.update(ssl_context=ctx)
        else:
            kwargs.update(tls_context=ctx, require_starttls=True)
    if a.auth:
        # aiosmtpd's auth_require_tls only knows STARTTLS; implicit TLS is TLS anyway.
        kwargs.update(
            authenticator=authenticator,
            auth_required=True,
            auth_require_tls=bool(a.tls_cert) and not a.implicit_tls,
        )
    controller = Controller(Handler(), hostname="127.0.0.1", port=a.port, **server_kwargs, **kwargs)
    controller.start()
    print("ready", flush=True)
    try:
        while True:
            time.sleep(3600)
    finally:
        controller.stop()


if __name__ == "__main__":
    sys.exit(main())
