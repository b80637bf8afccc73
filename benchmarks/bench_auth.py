"""What the bearer-token check adds to a REST call (goal: <= 0.2 ms at p50).

One process, one started :class:`~arcade_server.state.ServerState` (SQLite in a temp home),
two apps over it: the real one, and the same app with every role check replaced by a no-op
that hands back the admin principal (``app.dependency_overrides``). ``GET /api/v1/health``
(cheap: no database) is called through httpx's ASGI transport, in alternating batches so
drift hits both alike; the difference of the medians is the check's cost with the token
cached (every call but one a second). The cost of a cache miss (one indexed read in the
database thread pool) is measured too, with the cache turned off.

    python benchmarks/bench_auth.py [--calls 5000]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI, Request

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from arcade_server.api.app import create_app  # noqa: E402
from arcade_server.api.auth import PRINCIPAL_KEY, needs  # noqa: E402
from arcade_server.auth.roles import Principal, Role  # noqa: E402
from arcade_server.settings import Settings  # noqa: E402
from arcade_server.state import ServerState  # noqa: E402

ADMIN = Principal("admin", Role.ADMIN)


async def _bypass(request: Request) -> Principal:
    request.scope[PRINCIPAL_KEY] = ADMIN
    return ADMIN


def _without_auth(app: FastAPI) -> FastAPI:
    for role in Role:
        app.dependency_overrides[needs(role).dependency] = _bypass
    return app


async def _batch(client: httpx.AsyncClient, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        response = await client.get("/api/v1/health")
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, response.text
    return times


async def main(calls: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-auth-") as home:
        state = ServerState(Settings(home=Path(home), log_level="warning"))
        await state.start()
        try:
            token = state.settings.admin_token_file.read_text().strip()
            headers = {"Authorization": f"Bearer {token}"}
            guarded = create_app(state=state)
            open_app = _without_auth(create_app(state=state))
            uncached = create_app(state=state)
            uncached.state.authenticator.ttl = 0.0  # every call reads the database
            clients = {
                name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="http://bench", headers=headers)
                for name, app in (("auth", guarded), ("bypass", open_app),
                                  ("miss", uncached))
            }
            results: dict[str, list[float]] = {name: [] for name in clients}
            for client in clients.values():
                await _batch(client, 200)  # warm up
            batch = 250
            for _ in range(max(1, calls // batch)):
                for name, client in clients.items():
                    results[name] += await _batch(client, batch)
            for client in clients.values():
                await client.aclose()
        finally:
            await state.close()
    p50 = {name: statistics.median(times) * 1e3 for name, times in results.items()}
    p99 = {name: statistics.quantiles(times, n=100)[98] * 1e3
           for name, times in results.items()}
    print(f"GET /api/v1/health through the ASGI app, {len(results['auth'])} calls each")
    for name, label in (("bypass", "no auth (checks overridden)"),
                        ("auth", "bearer token, cached"),
                        ("miss", "bearer token, cache off (db read)")):
        print(f"  {label:36s} p50 {p50[name]:.3f} ms   p99 {p99[name]:.3f} ms")
    added = p50["auth"] - p50["bypass"]
    print(f"  the check adds {added:.3f} ms at p50 (goal <= 0.2 ms); a cache miss adds "
          f"{p50['miss'] - p50['bypass']:.3f} ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000, help="calls per variant [5000]")
    asyncio.run(main(parser.parse_args().calls))
