"""The gateway's other listeners: TLS (rediss://) and a Unix socket, next to plain TCP.

Certificates are made in the test with the `openssl` command line (`cryptography` is not
installed in the project's environment): a self-signed certificate for IP 127.0.0.1, which the
clients trust as their only CA and verify strictly.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import socket
import subprocess
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redisgate.backends import Backend
from redisgate.config.load import load_settings
from redisgate.errors import ConfigError
from redisgate.launcher.process import free_port
from redisgate.launcher.redis import RedisServer
from redisgate.proxy.clients.gateway import Gateway
from redisgate.proxy.keys.static import StaticSource, add_key, set_instance
from tests.integration.proxy.conftest import run_gateway

NO_RETRY = Retry(NoBackoff(), 0)


def openssl(*args: str | Path) -> None:
    subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True, timeout=30)


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM files in `folder`)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=127.0.0.1",
        "-addext", "subjectAltName=IP:127.0.0.1",
    )  # fmt: skip
    return cert, key


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    return make_certificate(tmp_path)


def test_tls_port_serves_verified_rediss_clients_while_plain_tcp_keeps_working(
    redis_server: RedisServer, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    tls_port = free_port()
    with run_gateway(
        redis_server,
        tmp_path,
        proxy_tls_port=tls_port,
        proxy_tls_cert_file=cert,
        proxy_tls_key_file=key,
    ) as gw:
        token = gw.tokens["main"]
        url = f"rediss://default:{token}@127.0.0.1:{tls_port}/0"
        with redis.Redis.from_url(
            url, ssl_cert_reqs="required", ssl_ca_certs=str(cert), ssl_check_hostname=True
        ) as tls:
            assert tls.ping()
            assert tls.set("over-tls", "secret") and tls.get("over-tls") == b"secret"
            assert tls.client_info()["laddr"] == f"127.0.0.1:{tls_port}"

        # The port really presents this certificate: a client trusting only the system CAs
        # refuses it.
        with (
            redis.Redis.from_url(url, ssl_cert_reqs="required", retry=NO_RETRY) as untrusting,
            pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"),
        ):
            untrusting.ping()

        cli = [
            "redis-cli", "--tls", "--cacert", str(cert), "-h", "127.0.0.1", "-p", str(tls_port),
            "--user", "default", "--pass", token, "--no-auth-warning",
        ]  # fmt: skip
        out = subprocess.run([*cli, "GET", "over-tls"], capture_output=True, text=True, timeout=30)
        assert (out.returncode, out.stdout.strip()) == (0, "secret"), out.stderr
        out = subprocess.run(
            [*cli, "SET", "from-cli", "1"], capture_output=True, text=True, timeout=30
        )
        assert out.stdout.strip() == "OK", out.stderr

        # Plain TCP, same instance, same data.
        with gw.client() as plain:
            assert plain.get("over-tls") == b"secret" and plain.get("from-cli") == b"1"
        with gw.direct() as direct:
            assert direct.get("from-cli") == b"1"


def test_unix_socket_serves_clients_and_is_removed_at_shutdown(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    path = tmp_path / "gw.sock"
    # A socket file left by a crashed gateway does not stop the next one from starting.
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as stale:
        stale.bind(str(path))
    assert path.is_socket()
    with run_gateway(redis_server, tmp_path, proxy_unix_socket=path) as gw:
        assert path.is_socket()
        with redis.Redis(unix_socket_path=str(path), password=gw.tokens["main"]) as unix:
            assert unix.ping()
            assert unix.set("over-unix", "v") and unix.get("over-unix") == b"v"
            assert unix.client_id() > 0 and unix.client_info()["user"] == gw.tokens["main"][3:15]
        with (
            redis.Redis(unix_socket_path=str(path), password="wrong", retry=NO_RETRY) as bad,
            pytest.raises(redis.AuthenticationError),
        ):
            bad.ping()
        with gw.client() as plain:
            assert plain.get("over-unix") == b"v"
    assert not path.exists()


def test_shutdown_leaves_a_successors_unix_socket_alone(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    path = tmp_path / "gw.sock"
    (tmp_path / "old").mkdir()
    (tmp_path / "new").mkdir()
    with contextlib.ExitStack() as stack:
        with run_gateway(redis_server, tmp_path / "old", proxy_unix_socket=path):
            new = stack.enter_context(
                run_gateway(redis_server, tmp_path / "new", proxy_unix_socket=path)
            )
        # The old gateway has shut down; the new one serves on the path.
        assert path.is_socket()
        with redis.Redis(unix_socket_path=str(path), password=new.tokens["main"]) as r:
            assert r.ping()


# --- Bad TLS settings --------------------------------------------------------------------------


def _keys_file(tmp_path: Path, backend: RedisServer) -> Path:
    keys_file = tmp_path / "keys.toml"
    set_instance(
        keys_file,
        "main",
        Backend(host="127.0.0.1", port=backend.port, password=backend.password),
    )
    add_key(keys_file, "main", "main-key")
    return keys_file


def test_missing_tls_key_file_is_refused_by_the_settings(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    missing = tmp_path / "missing-key.pem"
    flags = {
        "proxy_tls_port": "6390",
        "proxy_tls_cert_file": str(cert),
        "proxy_tls_key_file": str(missing),
    }
    with pytest.raises(ConfigError) as info:
        load_settings(flags=flags, env={})
    assert (
        f"proxy_tls_key_file = PosixPath('{missing}') (from flag --proxy-tls-key-file): "
        "is not an existing file" in str(info.value)
    )


@pytest.mark.parametrize("problem", ["missing key", "key of another certificate", "no files"])
async def test_bad_tls_files_fail_the_gateway_start_with_a_config_error(
    redis_server: RedisServer, tmp_path: Path, certificate: tuple[Path, Path], problem: str
) -> None:
    cert_file: Path | None
    key_file: Path | None
    cert_file, key_file = certificate
    if problem == "missing key":
        certificate[1].unlink()  # e.g. removed between reading the settings and starting
        expected = ["cannot load the TLS certificate or key", "No such file"]
    elif problem == "key of another certificate":
        key_file = tmp_path / "other-key.pem"
        openssl(
            "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", key_file
        )
        expected = ["cannot load the TLS certificate or key", "KEY_VALUES_MISMATCH"]
    else:
        cert_file = key_file = None
        expected = ["proxy_tls_cert_file and proxy_tls_key_file must name"]
    keys_file = _keys_file(tmp_path, redis_server)
    settings = dataclasses.replace(
        load_settings(env={}),
        proxy_port=0,
        http_port=0,
        proxy_tls_port=free_port(),
        proxy_tls_cert_file=cert_file,
        proxy_tls_key_file=key_file,
        keys_file=keys_file,
    )
    gateway = Gateway(settings, StaticSource(keys_file))
    try:
        with pytest.raises(ConfigError) as info:
            await gateway.start()
        for text in expected:
            assert text in str(info.value)
    finally:
        await gateway.shutdown(timeout_s=0)


async def test_a_gateway_that_fails_to_start_leaves_nothing_listening(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    port = free_port()
    keys_file = _keys_file(tmp_path, redis_server)
    settings = dataclasses.replace(
        load_settings(env={}),
        proxy_port=port,
        http_port=0,
        proxy_tls_port=free_port(),
        keys_file=keys_file,
    )
    gateway = Gateway(settings, StaticSource(keys_file))
    try:
        with pytest.raises(ConfigError):
            await gateway.start()
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except ConnectionRefusedError:
            pass
        else:
            writer.close()
            await writer.wait_closed()
            pytest.fail(f"port {port} still accepts clients after the failed start")
    finally:
        await gateway.shutdown(timeout_s=0)
