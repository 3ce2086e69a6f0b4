"""A local fake of Telnyx's Messaging API (`POST /v2/messages`) for tests. Standard library only.

usage: fake_telnyx.py PORT DIR API_KEY

Listens on 127.0.0.1:PORT, prints "listening PORT" once ready and stops cleanly on SIGTERM.

POST /v2/messages
    Needs `Authorization: Bearer API_KEY` (else 401, Telnyx code 10009) and a JSON body with
    `from`, `to` and `text` (else 422, code 10015, with `source.pointer`); `to` must be E.164
    (else 422, code 40310). Answers 200 with a body shaped like Telnyx's and stores the message as
    DIR/<n>.json: {"to", "from", "text", "messaging_profile_id", "id", "idempotency_key"}.
    A repeated `Idempotency-Key` gets the first answer again and stores nothing (as Telnyx,
    only successful answers are replayed).
POST /_fake/fail  {"status": 429 | 500 | ..., "count": N}
    The next N authenticated calls to /v2/messages answer that status (in Telnyx's error shape,
    429 with `Retry-After: 1`), storing nothing.
"""
import datetime
import json
import os
import re
import signal
import sys
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port, out, api_key = int(sys.argv[1]), sys.argv[2], sys.argv[3]
os.makedirs(out, exist_ok=True)

E164 = re.compile(r"^\+[1-9][0-9]{7,14}$")
lock = threading.RLock()
state = {"n": 0, "fail_status": 0, "fail_count": 0}
replies = {}  # Idempotency-Key -> the stored 200 answer

FAULTS = {
    400: {"code": "10015", "title": "Bad request",
          "detail": "The request could not be understood."},
    403: {"code": "10010", "title": "Authorization failed",
          "detail": "The API key is not allowed to send messages."},
    404: {"code": "10005", "title": "Resource not found",
          "detail": "The messaging profile was not found."},
    422: {"code": "40013", "title": "Invalid source number",
          "detail": "The source number is not associated with a messaging profile."},
    429: {"code": "10011", "title": "Too many requests",
          "detail": "You have exceeded the rate limit; retry later."},
    500: {"code": "10007", "title": "Unexpected error",
          "detail": "An unexpected error occurred."},
    503: {"code": "10013", "title": "Service unavailable",
          "detail": "The service is temporarily unavailable."},
}


def error(code, title, detail=None, pointer=None):
    e = {"code": code, "title": title}
    if detail is not None:
        e["detail"] = detail
    if pointer is not None:
        e["source"] = {"pointer": pointer}
    return {"errors": [e]}


def store(record):
    with lock:
        state["n"] += 1
        n = state["n"]
    tmp = os.path.join(out, f".{n}.tmp")
    with open(tmp, "w") as f:
        json.dump(record, f)
    os.replace(tmp, os.path.join(out, f"{n:06d}.json"))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("fake_telnyx: " + (fmt % args) + "\n")

    def reply(self, status, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def read_json(self):
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            return json.loads(raw or b"null")
        except ValueError:
            return None

    def do_GET(self):
        self.reply(404, error("10005", "Resource not found",
                              f"No route for GET {self.path}."))

    def do_POST(self):
        if self.path == "/_fake/fail":
            body = self.read_json() or {}
            with lock:
                state["fail_status"] = int(body.get("status", 500))
                state["fail_count"] = int(body.get("count", 1))
            return self.reply(200, {"ok": True})
        if self.path != "/v2/messages":
            self.read_json()
            return self.reply(404, error("10005", "Resource not found",
                                         f"No route for POST {self.path}."))
        self.messages()

    def messages(self):
        body = self.read_json()
        if self.headers.get("Authorization") != f"Bearer {api_key}":
            return self.reply(401, error(
                "10009", "Authentication failed",
                "The API key is missing, malformed or not valid."))
        with lock:
            if state["fail_count"] > 0:
                state["fail_count"] -= 1
                status = state["fail_status"]
            else:
                status = 0
        if status:
            err = FAULTS.get(status, {"code": "10007", "title": "Unexpected error"})
            headers = {"Retry-After": "1"} if status == 429 else None
            return self.reply(status, {"errors": [err]}, headers)
        if not isinstance(body, dict):
            return self.reply(400, error("10015", "Invalid value",
                                         "The request body is not a JSON object.",
                                         "/"))
        for field in ("from", "to", "text"):
            if not isinstance(body.get(field), str) or not body[field]:
                return self.reply(422, error(
                    "10015", "Invalid value",
                    f"The '{field}' parameter is required.", f"/{field}"))
        if not E164.match(body["to"]):
            return self.reply(422, error(
                "40310", "Invalid 'to' address",
                "The 'to' address should be an E.164 phone number.", "/to"))

        key = self.headers.get("Idempotency-Key")
        with lock:  # held across check-and-store so two racing retries still send once
            if key is not None and key in replies:
                return self.reply(200, replies[key])
            msg_id = str(uuid.uuid4())
            answer = {"data": {
                "record_type": "message",
                "id": msg_id,
                "direction": "outbound",
                "type": "SMS",
                "from": {"phone_number": body["from"], "carrier": "Telnyx",
                         "line_type": "VoIP"},
                "to": [{"phone_number": body["to"], "status": "queued",
                        "carrier": "", "line_type": ""}],
                "text": body["text"],
                "messaging_profile_id": body.get("messaging_profile_id"),
                "parts": 1,
                "encoding": "GSM-7",
                "created_at": datetime.datetime.now(datetime.timezone.utc)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "errors": [],
            }}
            store({
                "to": body["to"],
                "from": body["from"],
                "text": body["text"],
                "messaging_profile_id": body.get("messaging_profile_id"),
                "id": msg_id,
                "idempotency_key": key,
            })
            if key is not None:
                replies[key] = answer
        self.reply(200, answer)


server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
server.daemon_threads = True
thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
thread.start()
print(f"listening {port}", flush=True)
stop = threading.Event()
signal.signal(signal.SIGTERM, lambda *_: stop.set())
signal.signal(signal.SIGINT, lambda *_: stop.set())
stop.wait()
server.shutdown()
server.server_close()
