"""A real SMTP server for tests (aiosmtpd) that stores each message it accepts as JSON.

usage: smtp_sink.py PORT DIR
Each message becomes DIR/<n>.json: {"from", "to": [...], "subject", "message_id", "text",
"attachments": [{"filename", "content_type", "content"}]} with the text body decoded (quoted-printable,
base64) as a mail client would show it. Prints "listening PORT" once ready; stops on SIGTERM.
"""
import json
import os
import signal
import sys
import threading
from email import message_from_bytes
from email.policy import default

from aiosmtpd.controller import Controller

port, out = int(sys.argv[1]), sys.argv[2]
os.makedirs(out, exist_ok=True)
counter = {"n": 0}
lock = threading.Lock()


class Store:
    async def handle_DATA(self, server, session, envelope):
        msg = message_from_bytes(envelope.original_content, policy=default)
        body = msg.get_body(preferencelist=("plain",))
        attachments = []
        for part in msg.iter_attachments():
            content = part.get_content()
            if isinstance(content, bytes):
                content = content.decode("utf-8", "replace")
            attachments.append({
                "filename": part.get_filename(),
                "content_type": part.get_content_type(),
                "content": content,
            })
        record = {
            "from": envelope.mail_from,
            "to": list(envelope.rcpt_tos),
            "subject": str(msg["subject"] or ""),
            "message_id": str(msg["message-id"] or ""),
            "text": body.get_content() if body is not None else "",
            "attachments": attachments,
        }
        with lock:
            counter["n"] += 1
            n = counter["n"]
        tmp = os.path.join(out, f".{n}.tmp")
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.replace(tmp, os.path.join(out, f"{n:06d}.json"))
        return "250 Message accepted for delivery"


controller = Controller(Store(), hostname="127.0.0.1", port=port)
controller.start()
print(f"listening {port}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
controller.stop()
