# psycopg 3 (Debian's python3-psycopg) through a phigate port: what a Python application or agent does.
# Prints one JSON document of results; the vitest suite (psycopg.test.ts) checks them.
import json
import logging
import sys

import psycopg

# When the failed statement's result arrives while the block is still sending (the error is raised
# inside the `with conn.pipeline()` block), psycopg logs "error ignored terminating <Pipeline ...>:
# pipeline aborted" as it closes the pipeline: a race inside psycopg, the same against a direct
# connection. The error itself is checked below; stderr stays for real problems.
logging.getLogger("psycopg").setLevel(logging.ERROR)

port = int(sys.argv[1])
out = {}
with psycopg.connect(host="127.0.0.1", port=port, user="alice", dbname="ehr", application_name="psycopg-test") as conn:
    out["server_version"] = conn.info.server_version
    with conn.cursor() as cur:
        cur.execute("DROP TABLE IF EXISTS py_t")
        cur.execute("CREATE TABLE py_t (id int PRIMARY KEY, name text, amount numeric, seen timestamptz DEFAULT now())")
        # server-side binding (extended protocol), executemany
        cur.executemany("INSERT INTO py_t (id, name, amount) VALUES (%s, %s, %s)", [(i, f"name-{i}", i * 1.5) for i in range(1, 51)])
        cur.execute("SELECT count(*), sum(amount) FROM py_t WHERE id > %s", (10,))
        n, total = cur.fetchone()
        out["count"] = n
        out["sum"] = str(total)
        # prepared statements: psycopg prepares a query after 5 executions (named statement, Bind/Execute only)
        names = []
        for i in range(1, 9):
            cur.execute("SELECT name FROM py_t WHERE id = %s", (i,))
            names.append(cur.fetchone()[0])
        out["names"] = names
        # binary results
        with conn.cursor(binary=True) as bcur:
            bcur.execute("SELECT id, name, amount FROM py_t WHERE id = %s", (7,))
            row = bcur.fetchone()
            out["binary_row"] = [row[0], row[1], str(row[2])]
    conn.commit()
    # error recovery inside a transaction
    try:
        with conn.transaction():
            conn.execute("INSERT INTO py_t (id, name) VALUES (1000, 'x')")
            conn.execute("SELECT 1 / 0")
    except psycopg.errors.DivisionByZero as e:
        out["error"] = e.sqlstate
    out["after_error"] = conn.execute("SELECT count(*) FROM py_t WHERE id = 1000").fetchone()[0]
    # COPY both ways
    with conn.cursor() as cur:
        with cur.copy("COPY py_t (id, name, amount) FROM STDIN") as copy:
            for i in range(2000, 3000):
                copy.write_row((i, f"copied-{i}", i))
        lines = []
        with cur.copy("COPY (SELECT id, name FROM py_t WHERE id >= 2000 ORDER BY id) TO STDOUT") as copy:
            for data in copy:
                lines.append(bytes(data))
        out["copy_out_bytes"] = sum(len(x) for x in lines)
        cur.execute("SELECT count(*) FROM py_t WHERE id >= 2000")
        out["copied"] = cur.fetchone()[0]
    conn.commit()
    # pipeline mode: several statements sent before any result is read; one fails
    results = []
    try:
        with conn.pipeline():
            c1 = conn.execute("SELECT 'pipe-one' AS py_pipe_a")
            c2 = conn.execute("SELECT 1 / 0 AS py_pipe_b")
            c3 = conn.execute("SELECT 'pipe-three' AS py_pipe_c")
    except psycopg.errors.DivisionByZero:
        results.append("error")
    out["pipeline"] = results
    conn.rollback()
    # Ctrl-C equivalent: cancel a running statement
    import threading
    t = threading.Timer(0.5, conn.cancel)
    t.start()
    try:
        conn.execute("SELECT pg_sleep(10)")
    except psycopg.errors.QueryCanceled as e:
        out["cancelled"] = e.sqlstate
    conn.rollback()
print(json.dumps(out))
