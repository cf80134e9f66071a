"""A notebook user's connection to `mvrewrite serve`: ADBC's Flight SQL driver and pyarrow.

Starts the built binary on a free loopback port with a token and a read-only user, then over
ADBC: creates a table and an MV, queries through it into a pyarrow table (rows checked against
values computed here), inserts (stale: answered from the table), refreshes, binds a parameter,
lists tables, and checks that a read-only user cannot write and a wrong token gets nothing.

    python tests/python/serve_client.py target/debug/mvrewrite
"""

import os
import subprocess
import sys
import traceback

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa

TOKEN = "python-test-token"
SALES = [("fr", 3, 10.5), ("fr", 1, 7.0), ("de", 2, 3.25), ("de", 5, 1.5), ("it", 4, 8.0)]
QUERY = "SELECT country, sum(price) AS total, count(*) AS n FROM sales GROUP BY country ORDER BY country"


def expected(rows, min_quantity=None):
    """The query's answer, computed here."""
    groups = {}
    for country, quantity, price in rows:
        if min_quantity is not None and not quantity > min_quantity:
            continue
        total, n = groups.get(country, (0.0, 0))
        groups[country] = (total + price, n + 1)
    return [{"country": c, "total": t, "n": n} for c, (t, n) in sorted(groups.items())]


def start_server(binary):
    env = dict(os.environ, MVREWRITE_TOKEN=TOKEN, MVREWRITE_READ_ONLY_USERS="viewer:viewer-pw")
    server = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    line = server.stdout.readline()
    if not line.startswith("Flight SQL on "):
        server.kill()
        raise RuntimeError(f"the server did not start: {line!r}")
    return server, line.split()[-1]


def connect(uri, **kwargs):
    return flight_sql.connect(uri, db_kwargs=kwargs, autocommit=True)


def rows_of(cursor):
    table = cursor.fetch_arrow_table()
    assert isinstance(table, pa.Table)
    return table.to_pylist()


def explain(cursor, sql):
    cursor.execute("EXPLAIN " + sql)
    return "\n".join(str(v) for row in rows_of(cursor) for v in row.values())


def scenario(uri):
    """Each check raises on failure; returns the number of checks."""
    checks = 0
    bearer = {"adbc.flight.sql.authorization_header": f"Bearer {TOKEN}"}
    with connect(uri, **bearer) as conn, conn.cursor() as cur:
        values = ", ".join(f"('{c}', {q}, {p})" for c, q, p in SALES)
        cur.execute(f"CREATE TABLE sales (country VARCHAR, quantity INT, price DOUBLE) AS VALUES {values}")
        cur.fetchall()
        cur.execute(
            "CREATE MATERIALIZED VIEW by_country AS "
            "SELECT country, quantity, sum(price) AS total, count(*) AS n FROM sales GROUP BY country, quantity"
        )
        cur.fetchall()

        cur.execute(QUERY)
        assert rows_of(cur) == expected(SALES)
        assert "TableScan: by_country" in explain(cur, QUERY)
        checks += 2

        # An insert: the MV is stale, the table answers, with the new row.
        cur.execute("INSERT INTO sales VALUES ('es', 6, 2.5)")
        cur.fetchall()
        rows = SALES + [("es", 6, 2.5)]
        cur.execute(QUERY)
        assert rows_of(cur) == expected(rows)
        assert "TableScan: by_country" not in explain(cur, QUERY)
        checks += 2

        cur.execute("REFRESH MATERIALIZED VIEW by_country")
        refreshed = rows_of(cur)
        assert refreshed and refreshed[0]["mv"] == "by_country", refreshed
        cur.execute(QUERY)
        assert rows_of(cur) == expected(rows)
        assert "TableScan: by_country" in explain(cur, QUERY)
        checks += 3

        # A parameter, bound by the driver (a prepared statement).
        cur.execute(
            "SELECT country, sum(price) AS total, count(*) AS n FROM sales WHERE quantity > $1 "
            "GROUP BY country ORDER BY country",
            parameters=(2,),
        )
        assert rows_of(cur) == expected(rows, min_quantity=2)
        checks += 1

        # The catalog a notebook browses: tables and the MV, with their schemas.
        objects = conn.adbc_get_objects(depth="tables").read_all().to_pylist()
        names = {
            t["table_name"]: t["table_type"]
            for catalog in objects
            for schema in catalog["catalog_db_schemas"]
            for t in schema["db_schema_tables"]
        }
        assert names.get("sales") == "TABLE" and names.get("by_country") == "MATERIALIZED VIEW", names
        schema = conn.adbc_get_table_schema("sales")
        assert schema.names == ["country", "quantity", "price"], schema
        checks += 2

    with connect(uri, username="viewer", password="viewer-pw") as conn, conn.cursor() as cur:
        cur.execute(QUERY)
        assert rows_of(cur) == expected(rows)
        try:
            cur.execute("INSERT INTO sales VALUES ('xx', 1, 1.0)")
            cur.fetchall()
            raise AssertionError("a read-only user inserted")
        except flight_sql.Error as e:
            assert "read-only" in str(e), e
        checks += 2

    with connect(uri, **{"adbc.flight.sql.authorization_header": "Bearer not-the-token"}) as conn:
        try:
            with conn.cursor() as cur:
                cur.execute(QUERY)
                cur.fetchall()
            raise AssertionError("a wrong token was served")
        except flight_sql.Error as e:
            assert "nauthenticated" in str(e) or "token" in str(e), e
        checks += 1
    return checks


def main():
    binary = sys.argv[1]
    server, uri = start_server(binary)
    try:
        checks = scenario(uri)
    except Exception:
        traceback.print_exc()
        print("0 passed, 1 failed")
        return 1
    finally:
        server.terminate()
        server.wait(timeout=30)
    print(f"python client: {checks} checks against {uri}")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
