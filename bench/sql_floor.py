"""The bare SQL of one API request, as a floor for `bench.cpu` (issue 11).

    python -m bench.sql_floor --data /tmp/cpu_bench --database sqlite

Runs each target of `bench.cpu` once through the app in-process (the token's lookup cached
first), captures the statements and parameters it sent to the database, and runs exactly
those again through the same driver (the engine's raw sqlite3 or psycopg connection: no
SQLAlchemy, no HTTP), in one transaction as the request does, 300 times: the p50 of the
whole set, in ms.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event

from bench.cpu import env_of, targets

RUNS = 300
WARM = 50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--database", default="sqlite")
    args = parser.parse_args()
    for name, value in env_of(args.data, args.database, "src").items():
        if name.startswith("LEDGERLINE_"):
            os.environ[name] = value
    from fastapi.testclient import TestClient

    from ledgerline.app import create_app

    app = create_app()
    engine = app.state.engine
    client = TestClient(app)
    sqlite = engine.dialect.name == "sqlite"
    for name, path, token in targets(args.data, args.database):
        if token is None:
            continue
        headers = {"Authorization": f"Token {token}"}
        client.get(path, headers=headers)
        captured: list[tuple[str, Any]] = []

        def grab(*event_args: Any, into: list[tuple[str, Any]] = captured) -> None:
            statement, parameters = event_args[2], event_args[3]
            if statement.strip().upper() not in ("BEGIN", "BEGIN IMMEDIATE"):
                into.append((statement, parameters))

        event.listen(engine, "before_cursor_execute", grab)
        assert client.get(path, headers=headers).status_code == 200
        event.remove(engine, "before_cursor_execute", grab)
        raw = engine.raw_connection()
        dbapi: Any = raw.driver_connection
        times = []
        for _ in range(RUNS):
            started = time.perf_counter()
            cursor = dbapi.cursor()
            if sqlite:
                cursor.execute("BEGIN")
            for statement, parameters in captured:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            if sqlite:
                cursor.execute("COMMIT")
            else:
                dbapi.commit()
            cursor.close()
            times.append((time.perf_counter() - started) * 1000)
        raw.close()
        result = {"statements": len(captured), "p50_ms": statistics.median(times[WARM:])}
        print(json.dumps({"database": args.database, "target": name, **result}))


if __name__ == "__main__":
    main()
