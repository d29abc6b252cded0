# psycopg 3 through pgrelay (transaction pooling): run by test/drivers/psycopg.test.ts with the
# connection strings of two relays (the second with max_prepared_statements = 3). Prints one JSON
# object per check: {"check": ..., "ok": bool, "detail": ...}. psycopg prepares a query after
# prepare_threshold (5) executions as _pg3_N, and deallocates with SQL DEALLOCATE when its cache
# (prepared_max) is full.
import json
import sys
import threading
import psycopg

dsn, small_dsn = sys.argv[1], sys.argv[2]


def report(check, ok, detail=""):
    print(json.dumps({"check": check, "ok": bool(ok), "detail": str(detail)}), flush=True)


def run(check, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 - every failure is reported, not raised
        report(check, False, f"{type(e).__name__}: {e}")


def default_prepare_path():
    errors = []
    pids = set()
    prepared = []
    lock = threading.Lock()

    def worker(i):
        with psycopg.connect(dsn, autocommit=True) as conn:
            for n in range(40):
                ident = (i * 7 + n) % 100 + 1
                row = conn.execute("select v, pg_backend_pid() from drv where id = %s", (ident,)).fetchone()
                with lock:
                    pids.add(row[1])
                    if row[0] != f"v{ident}":
                        errors.append(f"worker {i}: {row[0]}")
            with lock:
                prepared.append(len(conn._prepared._names))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    report("default prepare path: right rows", not errors, errors[:3])
    report("default prepare path: psycopg prepared its statement", all(p >= 1 for p in prepared) and len(prepared) == 8, prepared)
    report("default prepare path: both servers used", len(pids) == 2, len(pids))


def dealloc_and_prepare_again():
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.prepared_max = 2
        sent = []
        maintenance = conn._prepared.get_maintenance_commands

        def recorded():
            for cmd in maintenance():
                sent.append(cmd)
                yield cmd

        conn._prepared.get_maintenance_commands = recorded
        got = []
        for round_ in range(4):
            for k in range(4):
                for _ in range(6):  # past prepare_threshold
                    got.append(conn.execute(f"select {k} as k, %s::int as r", (round_,)).fetchone() == (k, round_))
        report("prepared_max = 2: DEALLOCATE of evicted names, prepared again", all(got), f"{got.count(False)} wrong of {len(got)}")
        deallocs = [c for c in sent if c.startswith(b"DEALLOCATE ")]
        report("prepared_max = 2: psycopg sent SQL DEALLOCATE for its evicted names", len(deallocs) >= 10, deallocs[:2])


def pipeline():
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor() as cur:
            params = [(i + 1,) for i in range(50)]
            cur.executemany("select v from drv where id = %s", params, returning=True)
            rows = []
            while True:
                rows.append(cur.fetchone()[0])
                if not cur.nextset():
                    break
        report("executemany in a pipeline", rows == [f"v{i + 1}" for i in range(50)], rows[:3])
        with conn.pipeline():
            cursors = [conn.execute("select %s::int * 2", (i,), prepare=True) for i in range(20)]
        report("pipeline of prepared executions", [c.fetchone()[0] for c in cursors] == [i * 2 for i in range(20)])


def failing_parse():
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute("selec 1", prepare=True)
            report("failing Parse: 42601", False, "no error")
        except psycopg.errors.SyntaxError as e:
            report("failing Parse: 42601", e.sqlstate == "42601", e.sqlstate)
        try:
            conn.execute("select * from no_such_table where id = %s", (1,), prepare=True)
            report("failing Parse: 42P01", False, "no error")
        except psycopg.errors.UndefinedTable as e:
            report("failing Parse: 42P01", e.sqlstate == "42P01", e.sqlstate)
        report("failing Parse: the connection goes on", conn.execute("select 42", prepare=True).fetchone()[0] == 42)
        with conn.transaction():
            report("failing Parse: and in a transaction", conn.execute("select %s::int", (7,), prepare=True).fetchone()[0] == 7)


def eviction():
    errors = []

    def worker(i):
        with psycopg.connect(small_dsn, autocommit=True) as conn:
            for n in range(30):
                k = (n + i) % 8
                row = conn.execute(f"select {k} as k, %s::int", (n,), prepare=True).fetchone()
                if row != (k, n):
                    errors.append(row)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    report("max_prepared_statements = 3: evicted and prepared again", not errors, errors[:3])


def options():
    with psycopg.connect(dsn, autocommit=True, options="-c TimeZone=Pacific/Auckland -c search_path=drv_s,public") as conn, psycopg.connect(dsn, autocommit=True) as other:
        good = True
        for _ in range(20):
            tz, where = conn.execute("select current_setting('TimeZone'), (select v from where_am_i)").fetchone()
            good = good and tz == "Pacific/Auckland" and where == "drv_s"
            good = good and other.execute("show timezone").fetchone()[0] != "Pacific/Auckland"
        report("options: TimeZone and search_path in every transaction", good)


for name, fn in [
    ("default prepare path", default_prepare_path),
    ("dealloc", dealloc_and_prepare_again),
    ("pipeline", pipeline),
    ("failing parse", failing_parse),
    ("eviction", eviction),
    ("options", options),
]:
    run(name, fn)
print(json.dumps({"done": True, "psycopg": psycopg.__version__, "libpq": psycopg.pq.version()}), flush=True)
