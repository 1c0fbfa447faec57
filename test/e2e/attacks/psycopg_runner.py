# psycopg 3 driver of the attack suite: runs each item's statements on one connection (text or binary
# results), reports for each statement its status, rows, COPY data or error, with the notices and
# notifications received, as one JSON document keyed by item. The vitest suite checks it for leaks.
import json
import logging
import re
import sys

import psycopg

logging.getLogger("psycopg").setLevel(logging.CRITICAL)

req = json.load(sys.stdin)
port = req["port"]
binary = req["binary"]


def show(v):
    """A value as text, bytes as hex and as latin1 so every encoding of a raw value stays findable."""
    if v is None:
        return None
    if isinstance(v, (bytes, bytearray, memoryview)):
        b = bytes(v)
        return {"hex": b.hex(), "latin1": b.decode("latin1")}
    if isinstance(v, (list, tuple)):
        return [show(x) for x in v]
    return str(v)


def error_of(e):
    d = getattr(e, "diag", None)
    return {
        "code": getattr(e, "sqlstate", None) or type(e).__name__,
        "message": str(e),
        "detail": d.message_detail if d else None,
        "hint": d.message_hint if d else None,
        "position": d.statement_position if d else None,
    }


class Conn:
    def __init__(self):
        self.conn = None
        self.notices = []
        self.notifications = []

    def open(self):
        if self.conn is not None and not self.conn.closed and not self.conn.broken:
            return
        self.conn = psycopg.connect(host="127.0.0.1", port=port, user="alice", dbname="ehr", autocommit=True)
        self.conn.add_notice_handler(lambda d: self.notices.append(
            json.dumps({"severity": d.severity, "code": d.sqlstate, "message": d.message_primary, "detail": d.message_detail, "hint": d.message_hint})))
        self.conn.add_notify_handler(lambda n: self.notifications.append(f"{n.channel}:{n.payload}"))

    def dead(self):
        return self.conn is None or self.conn.closed or self.conn.broken

    def step(self, s):
        text = s["text"]
        values = s.get("values")
        if values is not None:
            # psycopg's placeholders are %s: escape literal % and turn $n into %s (in order)
            text = re.sub(r"\$\d+", "%s", text.replace("%", "%%"))
        try:
            with self.conn.cursor(binary=binary) as cur:
                if re.match(r"^\s*COPY\b", text, re.I) and re.search(r"\bTO\s+STDOUT\b", text, re.I):
                    chunks = []
                    with cur.copy(text) as cp:
                        for data in cp:
                            chunks.append(bytes(data))
                    return {"tag": cur.statusmessage, "copy": show(b"".join(chunks))}
                # The reset between attacks is never auto-prepared by psycopg: DISCARD ALL drops the
                # server's prepared statements, and a prepared ROLLBACK would then fail.
                cur.execute(text, values, prepare=False if s.get("reset") else None)
                out = {"tag": cur.statusmessage}
                if cur.description is not None:
                    out["fields"] = [c.name for c in cur.description]
                    out["rows"] = [show(r) for r in cur.fetchall()]
                return out
        except psycopg.Error as e:
            return error_of(e)

    def run(self, steps):
        self.open()
        self.notices.clear()
        self.notifications.clear()
        out = []
        lost = False
        for s in steps:
            out.append(self.step(s))
            if self.dead():
                lost = True
                break
        if not self.dead():
            self.step({"text": "ROLLBACK", "reset": True})
            self.step({"text": "DISCARD ALL", "reset": True})
            # notifications are delivered between statements: one more round trip collects them
            try:
                self.conn.execute("SELECT 1")
            except psycopg.Error:
                pass
            if self.dead():
                lost = True
        return {"steps": out, "notices": list(self.notices), "notifications": list(self.notifications), "lost": lost}


c = Conn()
results = {}
for item in req["items"]:
    try:
        results[item["key"]] = c.run(item["steps"])
    except psycopg.Error as e:
        results[item["key"]] = {"steps": [error_of(e)], "notices": [], "notifications": [], "lost": True}
print(json.dumps(results))
