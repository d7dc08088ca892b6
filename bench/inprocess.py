"""CPU per request of the app itself, in one process, through its ASGI interface (issue 11).

    LEDGERLINE_DATABASE_URL=... python -m bench.inprocess --token TOKEN \\
        /api/v2/invoices/6644/line-item-groups?limit=100 --requests 300 --repeats 5

No server, socket or HTTP parser: httpx's ASGI transport calls the app as hypercorn would,
so the figure is the app's own work (middleware, dependencies, endpoint, SQL, rendering) and
the thread hand-offs, without what `bench.cpu` adds by measuring a real `serve`. Put another
build first on `PYTHONPATH` to compare builds over the same database (the database must be at
the migration that build expects). Prints the process's CPU milliseconds per request, the
minimum and the median of the repeats, and the wall-clock median.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx


async def measure(path: str, token: str, requests: int, repeats: int) -> list[tuple[float, float]]:
    from ledgerline.app import create_app

    app = create_app()
    headers = {"Authorization": f"Token {token}"}
    runs: list[tuple[float, float]] = []
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for _ in range(min(requests, 100)):  # warm: caches, compiled statements, the key
                answer = await client.get(path, headers=headers)
                answer.raise_for_status()
            for _ in range(repeats):
                cpu, wall = time.process_time(), time.perf_counter()
                for _ in range(requests):
                    await client.get(path, headers=headers)
                runs.append(
                    (
                        (time.process_time() - cpu) / requests * 1000,
                        (time.perf_counter() - wall) / requests * 1000,
                    )
                )
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("path")
    parser.add_argument("--token", required=True)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    runs = asyncio.run(measure(args.path, args.token, args.requests, args.repeats))
    cpu = [run[0] for run in runs]
    wall = [run[1] for run in runs]
    print(
        f"cpu ms/request min {min(cpu):.3f} median {statistics.median(cpu):.3f}; "
        f"wall median {statistics.median(wall):.3f}"
    )


if __name__ == "__main__":
    main()
