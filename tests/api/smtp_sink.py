"""An SMTP server for the email test: aiosmtpd on 127.0.0.1:<port>, requiring STARTTLS with
the certificate and key given (or, with `plain`, offering no STARTTLS at all), printing each
message it accepts as one JSON line (sender, recipients, whether the session was encrypted,
the message as received). Prints "ready" first. Usage: smtp_sink.py PORT (CERT KEY | plain)"""

import asyncio
import json
import ssl
import sys

from aiosmtpd.controller import Controller


class Sink:
    async def handle_DATA(self, server, session, envelope):
        print(
            json.dumps(
                {
                    "from": envelope.mail_from,
                    "to": envelope.rcpt_tos,
                    "tls": session.ssl is not None,
                    "data": envelope.original_content.decode("utf-8", "replace"),
                }
            ),
            flush=True,
        )
        return "250 Message accepted for delivery"


def main():
    port = int(sys.argv[1])
    tls = {}
    if sys.argv[2] != "plain":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(sys.argv[2], sys.argv[3])
        tls = {"tls_context": context, "require_starttls": True}
    controller = Controller(
        Sink(), hostname="127.0.0.1", port=port, server_hostname="localhost", **tls
    )
    controller.start()
    print("ready", flush=True)
    try:
        sys.stdin.read()  # until the test closes it
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
