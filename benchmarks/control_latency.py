"""Latency of the control API's login and `GET /v1/me`, over real HTTP, argon2 included.

Without `--url` it starts everything itself on loopback: an ephemeral PostgreSQL (the same
launcher the tests use), a migrated database, and `redisgate control` as its own process with
the production argon2id defaults (or whatever REDISGATE_ARGON2_* says). Then it registers one
user and times `--requests` sequential logins and `--requests` sequential `GET /v1/me` with one
keep-alive aiohttp client, and prints p50/p90/p99.

    python benchmarks/control_latency.py --requests 300
    python benchmarks/control_latency.py --url http://127.0.0.1:8080   # a running server
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp

from redisgate.config.load import load_settings
from redisgate.launcher.postgres import PostgresServer
from redisgate.launcher.process import free_port
from redisgate.store import db
from redisgate.store.migrations import default_migrations_dir, migrate

PASSWORD = "benchmark passphrase 2026"


@contextlib.asynccontextmanager
async def own_server() -> AsyncIterator[str]:
    """PostgreSQL + `redisgate control` in a temporary folder; yields the API's URL."""
    with PostgresServer() as postgres, tempfile.TemporaryDirectory() as tmp:
        async with db.connection(postgres.dsn()) as admin:
            await db.ensure_database(admin, "bench")
        url = postgres.dsn("bench")
        async with db.connection(url) as conn:
            await migrate(conn, default_migrations_dir())
        port = free_port()
        env = {**os.environ, "REDISGATE_DATABASE_URL": url, "REDISGATE_DATA_DIR": tmp}
        log = (Path(tmp) / "control.log").open("w")
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "redisgate",
            "control",
            "--control-port",
            str(port),
            "--log-level",
            "warning",
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            async with aiohttp.ClientSession() as session:
                for _ in range(200):
                    with contextlib.suppress(aiohttp.ClientError):
                        async with session.get(base + "/readyz") as r:
                            if r.status == 200:
                                break
                    await asyncio.sleep(0.05)
                else:
                    raise SystemExit("the control API did not become ready")
            yield base
        finally:
            proc.terminate()
            await asyncio.wait_for(proc.wait(), 10)
            log.close()


async def timed(n: int, call: Callable[[], Awaitable[None]]) -> list[float]:
    await call()  # warm-up (connection, caches)
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    return (
        f"| {name} | {len(samples)} | {pct(50):.1f} | {pct(90):.1f} | {pct(99):.1f} | "
        f"{statistics.mean(samples):.1f} |"
    )


async def measure(base: str, requests: int) -> None:
    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    credentials = {"email": email, "password": PASSWORD}
    async with aiohttp.ClientSession() as http:
        async with http.post(base + "/v1/auth/register", json=credentials) as r:
            assert r.status == 201, await r.text()
            token = (await r.json())["access_token"]
        headers = {"Authorization": f"Bearer {token}"}

        async def login() -> None:
            async with http.post(base + "/v1/auth/login", json=credentials) as r:
                assert r.status == 200, await r.text()
                await r.read()

        async def me() -> None:
            async with http.get(base + "/v1/me", headers=headers) as r:
                assert r.status == 200, await r.text()
                await r.read()

        logins = await timed(requests, login)
        mes = await timed(requests, me)
    s = load_settings()
    print(
        f"argon2id t={s.argon2_time_cost} m={s.argon2_memory_kib} KiB p={s.argon2_parallelism}; "
        f"{requests} sequential requests each, one keep-alive connection\n"
    )
    print("| Request | n | p50 ms | p90 ms | p99 ms | mean ms |")
    print("|---|---|---|---|---|---|")
    print(summary("POST /v1/auth/login", logins))
    print(summary("GET /v1/me", mes))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running control API (default: start one)")
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if args.url:
        await measure(args.url.rstrip("/"), args.requests)
        return
    async with own_server() as base:
        await measure(base, args.requests)


if __name__ == "__main__":
    asyncio.run(main())
