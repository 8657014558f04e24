#!/usr/bin/env python3
"""A local webhook receiver for lowcode's tests, demo and bench (127.0.0.1 only).

    webhook_receiver.py PORT SECRET LOG

Answers by the path of the URL it is sent to:
    /ok             200
    /fail           500
    /busy?after=N   429 with Retry-After: N
    /unavailable?after=N  503 with Retry-After: N
    /gone           410
    /hang?secs=N    waits N seconds (default 30), then 200
    /flaky?n=K      500 for the first K attempts of each webhook-id, then 200
    /redirect       302 to /ok (must not be followed)
Every request is checked against SECRET as Standard Webhooks says (webhook-id,
webhook-timestamp, webhook-signature: v1,base64(HMAC-SHA256(id.timestamp.body))) and appended
to LOG as one JSON line: path, id, timestamp, sig_ok, status, topic, event (the body's
data.n when there is one). Unless LOG is '-', which logs nothing (bench).
"""
import base64
import hashlib
import hmac
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT = int(sys.argv[1])
SECRET = sys.argv[2]
LOG = sys.argv[3]
KEY = base64.b64decode(SECRET[len("whsec_"):] if SECRET.startswith("whsec_") else SECRET)
lock = threading.Lock()
seen = {}
out = None if LOG == "-" else open(LOG, "a", buffering=1)


def verify(msg_id, timestamp, body, header):
    signed = f"{msg_id}.{timestamp}.".encode() + body
    expected = base64.b64encode(hmac.new(KEY, signed, hashlib.sha256).digest()).decode()
    for sig in (header or "").split(" "):
        version, _, value = sig.partition(",")
        if version == "v1" and hmac.compare_digest(value, expected):
            return True
    return False


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: without this, Nagle holds the second one back
    # until the client's delayed ACK (40 ms a request).
    disable_nagle_algorithm = True

    def log_message(self, *args):
        pass

    def answer(self, status, headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def do_POST(self):
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        url = urlparse(self.path)
        query = parse_qs(url.query)
        msg_id = self.headers.get("webhook-id")
        ok = verify(msg_id, self.headers.get("webhook-timestamp"), body,
                    self.headers.get("webhook-signature"))
        with lock:
            seen[msg_id] = seen.get(msg_id, 0) + 1
            count = seen[msg_id]
        status, headers = 200, []
        path = url.path
        if path == "/fail":
            status = 500
        elif path in ("/busy", "/unavailable"):
            status = 429 if path == "/busy" else 503
            headers.append(("Retry-After", query.get("after", ["1"])[0]))
        elif path == "/gone":
            status = 410
        elif path == "/hang":
            time.sleep(float(query.get("secs", ["30"])[0]))
        elif path == "/flaky":
            if count <= int(query.get("n", ["2"])[0]):
                status = 500
        elif path == "/redirect":
            status = 302
            headers.append(("Location", "/ok"))
        if not ok:
            status = 401
        if out is not None:
            try:
                doc = json.loads(body)
            except ValueError:
                doc = {}
            data = doc.get("data") if isinstance(doc, dict) else None
            line = json.dumps({
                "path": path, "id": msg_id, "timestamp": self.headers.get("webhook-timestamp"),
                "sig_ok": ok, "status": status, "topic": doc.get("type") if isinstance(doc, dict) else None,
                "event": data.get("n") if isinstance(data, dict) else None,
                "received_at": time.time(),
            })
            with lock:
                out.write(line + "\n")
        try:
            self.answer(status, headers)
        except (BrokenPipeError, ConnectionResetError):
            pass


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128


if __name__ == "__main__":
    Server(("127.0.0.1", PORT), Handler).serve_forever()
