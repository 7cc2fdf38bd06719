"""Several daemons on one key through Redis (SPEC §10, issue 13), with a real redis-server.

Each test starts its own redis-server on a free loopback port (Debian's package; `.ci/run` installs
it) and two or more daemons with their own state_dir and port, one config, one API key. The simulator
processes requests in random order (delay), as EXMO checks nonces in processing order.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import Service, Stack, cli, curl_json, free_port, start, wait_for_port
from tests.redis_stack import REDIS_MARKS, Redis, alternating, daemons, start_redis

pytestmark = REDIS_MARKS


@pytest.fixture
def stack_on_redis(make_stack: Callable[..., Stack], redis_server: Redis) -> Iterator[tuple[Stack, Redis]]:
    stack = make_stack(delay_ms=10)
    yield stack, redis_server
    for service in stack.extra.get("daemons", []):
        service.kill9()


@pytest.mark.parametrize("count", [2, 3])
def test_daemons_on_one_key_never_see_40009_and_execute_each_order_once(
        stack_on_redis: tuple[Stack, Redis], count: int) -> None:
    """10 bots x 20 orders, each order to the next daemon in turn, processed out of order upstream:
    no 40009, every client_id executed exactly once."""
    stack, redis = stack_on_redis
    bases = [service.url for service in daemons(stack, redis, count)]
    answers = asyncio.run(alternating(bases, clients=10, calls=20))
    bad = [a for a in answers if a[0] != 200 or a[1].get("result") is not True]
    assert not bad, bad[:3]
    stats = stack.sim_stats()
    assert stats["errors"].get("40009", 0) == 0
    assert stats["client_ids"] == {str(i): 1 for i in range(1, 201)}


def test_check_reports_whether_redis_answers(stack_on_redis: tuple[Stack, Redis]) -> None:
    stack, redis = stack_on_redis
    stack.config.write_text(stack.config.read_text() + f"redis: {{url: '{redis.url}'}}\n")
    result = cli("check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file))
    assert result.returncode == 0 and f"redis: {redis.url} answers" in result.stdout, result.stderr
    redis.stop()
    result = cli("check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file))
    assert result.returncode != 0 and "redis:" in result.stderr and "Traceback" not in result.stderr


def test_halt_is_seen_by_every_daemon(stack_on_redis: tuple[Stack, Redis]) -> None:
    """`exmo-proxy halt on` with Redis in the config: both daemons refuse orders within a second; off
    lets both trade again."""
    stack, redis = stack_on_redis
    first, second = daemons(stack, redis, 2)
    assert cli("halt", "on", "--config", str(stack.config), "--state-dir", str(stack.tmp / "state-0"),
               "--reason", "test").returncode == 0
    time.sleep(1.5)
    for service in (first, second):
        status, body = curl_json(f"{service.url}/v1.1/order_create", "-d", "pair=BTC_USDT", "-d",
                                 "quantity=0.001", "-d", "price=20000", "-d", "type=buy")
        assert (status, body["proxy_error"]) == (403, "halted"), service.url
    assert cli("halt", "off", "--config", str(stack.config), "--state-dir", str(stack.tmp / "state-0"),
               ).returncode == 0
    time.sleep(1.5)
    for service in (first, second):
        assert curl_json(f"{service.url}/v1.1/user_info", "-X", "POST")[0] == 200


def _start_one(stack: Stack, number: int, *extra: str) -> Service:
    port = free_port()
    return start(["run", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file),
                  "--listen", f"127.0.0.1:{port}", "--state-dir", str(stack.tmp / f"state-{number}"),
                  *(extra or ("--upstream", stack.sim.url))], port, stack.tmp / f"daemon-{number}.log")


def test_redis_down_refuses_signed_calls_unsent_then_recovers_empty(
        stack_on_redis: tuple[Stack, Redis]) -> None:
    """Redis stops under load: signed calls get 503 coordination_unavailable and are not sent, /readyz is
    503 naming Redis, public reads go on; Redis comes back empty (its counter lost): trading resumes
    without a restart and without a 40009."""
    stack, redis = stack_on_redis
    first, second = daemons(stack, redis, 2)
    bases = [first.url, second.url]
    assert all(a[0] == 200 for a in asyncio.run(alternating(bases, clients=4, calls=5)))
    redis.stop()
    executed = sum(stack.sim_stats()["executed"].values())
    status, body = curl_json(f"{first.url}/v1.1/order_create", "-d", "pair=BTC_USDT", "-d", "quantity=0.001",
                             "-d", "price=20000", "-d", "type=buy")
    assert (status, body["proxy_error"]) == (503, "coordination_unavailable"), body
    assert "not sent" in body["error"]
    assert sum(stack.sim_stats()["executed"].values()) == executed  # refused before signing
    time.sleep(1.2)
    status, ready = curl_json(f"{second.url}/readyz")
    assert status == 503 and ready["reason"].startswith("redis:") and str(redis.port) in ready["reason"]
    assert curl_json(f"{first.url}/v1.1/ticker")[0] == 200  # public reads on a local share of the rate
    revived = start_redis(redis.folder, redis.port)  # empty: no persistence
    try:
        deadline = time.monotonic() + 10
        while curl_json(f"{first.url}/readyz")[0] != 200 or curl_json(f"{second.url}/readyz")[0] != 200:
            assert time.monotonic() < deadline, "the daemons did not see Redis come back"
            time.sleep(0.2)
        answers = asyncio.run(alternating(bases, clients=4, calls=10, first=1000))
        refused = [a for a in answers if a[0] != 200 or a[1].get("result") is not True]
        assert not refused, refused[:3]
        assert stack.sim_stats()["errors"].get("40009", 0) == 0
    finally:
        revived.stop()


def test_a_daemon_killed_holding_the_lease_holds_the_key_up_only_for_the_lease_ttl(
        stack_on_redis: tuple[Stack, Redis]) -> None:
    """kill -9 of a daemon whose call waits on EXMO (an upstream that never answers): the other daemon's
    call on the same key goes through once the lease's TTL (upstream timeout + 5 s) has run out."""
    stack, redis = stack_on_redis
    text = stack.config.read_text().replace("upstream_timeout_s: 15", "upstream_timeout_s: 2")
    stack.config.write_text(text + f"redis: {{url: '{redis.url}'}}\n")
    stack.daemon.stop()
    hang = _HangingUpstream()
    holder = _start_one(stack, 0, "--upstream", f"http://127.0.0.1:{hang.port}")
    other = _start_one(stack, 1)
    stack.extra["daemons"] = [holder, other]
    try:
        caller = subprocess.Popen(["curl", "-s", "-X", "POST", f"{holder.url}/v1.1/user_info"],
                                  stdout=subprocess.DEVNULL)
        assert hang.accepted.wait(5), "the holder never reached its upstream"
        holder.kill9()
        caller.wait(timeout=10)
        started = time.monotonic()
        status, body = curl_json(f"{other.url}/v1.1/user_info", "-X", "POST", "-H", "X-Max-Wait-Ms: 20000")
        waited = time.monotonic() - started
        assert status == 200 and "balances" in body, body
        assert 4.0 < waited < 9.0, f"waited {waited:.1f}s for a lease with a 7 s TTL"
        assert stack.sim_stats()["errors"].get("40009", 0) == 0
    finally:
        hang.close()


class _HangingUpstream:
    """Accepts connections and reads, never answers: a call to it holds its key's lease."""

    def __init__(self) -> None:
        import socket
        import threading

        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self.accepted = threading.Event()
        self._open: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            self._open.append(conn)
            self.accepted.set()

    def close(self) -> None:
        self._server.close()
        for conn in self._open:
            conn.close()


def test_the_rate_limit_is_shared_by_the_daemons(make_stack: Callable[..., Stack],
                                                 redis_server: Redis) -> None:
    """Two daemons offered 30 calls/s each against an exchange that allows 10/s: 0 x 40034, because
    they draw their slots from one schedule in Redis; what does not fit gets 429 with Retry-After."""
    stack = make_stack(rate=10, sim_rate=10)
    try:
        first, second = daemons(stack, redis_server, 2)

        async def offer(base: str) -> list[int]:
            async with aiohttp.ClientSession(headers={"X-Max-Wait-Ms": "500"}) as session:
                async def one() -> int:
                    async with session.post(f"{base}/v1.1/user_info") as resp:
                        await resp.read()
                        return resp.status
                tasks = []
                for _ in range(60):  # 30/s for 2 s
                    tasks.append(asyncio.ensure_future(one()))
                    await asyncio.sleep(1 / 30)
                return list(await asyncio.gather(*tasks))

        async def both() -> list[int]:
            a, b = await asyncio.gather(offer(first.url), offer(second.url))
            return a + b

        statuses = asyncio.run(both())
        stats = stack.sim_stats()
        assert stats["errors"].get("40034", 0) == 0, stats["errors"]
        assert statuses.count(200) >= 15 and statuses.count(429) >= 60
        assert set(statuses) <= {200, 429}
    finally:
        for service in stack.extra.get("daemons", []):
            service.kill9()


def test_an_idempotency_key_retried_on_another_daemon_is_answered_once(
        make_stack: Callable[..., Stack], redis_server: Redis) -> None:
    """A keyed order sent to one daemon and retried on another while in flight (the exchange takes up to
    3 s), and again after: the retries get the first answer (Idempotent-Replayed), one execution."""
    stack = make_stack(delay_ms=3000)
    first, second = daemons(stack, redis_server, 2)
    order = {"pair": "BTC_USDT", "quantity": "0.001", "price": "20000", "type": "buy", "client_id": "77"}

    async def go() -> list[tuple[int, Any, str | None]]:
        async with aiohttp.ClientSession(headers={"Idempotency-Key": "retried-elsewhere"}) as session:
            async def send(base: str, after: float) -> tuple[int, Any, str | None]:
                await asyncio.sleep(after)
                async with session.post(f"{base}/v1.1/order_create", data=order) as resp:
                    answer = await resp.json(content_type=None)
                    return resp.status, answer, resp.headers.get("Idempotent-Replayed")
            answers = list(await asyncio.gather(send(first.url, 0), send(second.url, 0.1)))
            answers.append(await send(second.url, 0))
            return answers

    try:
        (status, body, replayed), *retries = asyncio.run(go())
        assert status == 200 and body["result"] is True and replayed is None
        for retry in retries:
            assert retry == (200, body, "true")
        assert stack.sim_stats()["client_ids"] == {"77": 1}
    finally:
        for service in stack.extra.get("daemons", []):
            service.kill9()


def _sentinel(folder: Path, port: int, primary: int) -> subprocess.Popen[bytes]:
    folder.mkdir(parents=True, exist_ok=True)
    conf = folder / "sentinel.conf"  # Sentinel rewrites its own file: it must be writable
    conf.write_text(f"port {port}\nbind 127.0.0.1\ndir {folder}\n"
                    f"sentinel monitor mymaster 127.0.0.1 {primary} 2\n"
                    "sentinel down-after-milliseconds mymaster 1000\n"
                    "sentinel failover-timeout mymaster 5000\n")
    with (folder / "sentinel.log").open("ab") as log:
        return subprocess.Popen(["redis-server", str(conf), "--sentinel"], stdout=log,
                                stderr=subprocess.STDOUT)


def _primary_port(sentinel_port: int) -> int | None:
    found = subprocess.run(["redis-cli", "-p", str(sentinel_port), "SENTINEL", "get-master-addr-by-name",
                            "mymaster"], capture_output=True, text=True, check=False).stdout.split()
    return int(found[1]) if len(found) == 2 and found[1].isdigit() else None


def test_a_sentinel_failover_never_makes_a_nonce_go_back(make_stack: Callable[..., Stack],
                                                        tmp_path: Path) -> None:
    """A primary, a replica and three Sentinels on loopback; two daemons on one key through Sentinel.
    Orders before, a forced failover, orders after: every order executed once, no 40009."""
    stack = make_stack(delay_ms=10)
    primary = start_redis(tmp_path / "primary")
    replica_port = free_port()
    replica = start_redis(tmp_path / "replica", replica_port)
    subprocess.run(["redis-cli", "-p", str(replica_port), "REPLICAOF", "127.0.0.1", str(primary.port)],
                   check=True, capture_output=True)
    ports = [free_port() for _ in range(3)]
    sentinels = [_sentinel(tmp_path / f"sentinel-{n}", port, primary.port) for n, port in enumerate(ports)]
    try:
        deadline = time.monotonic() + 15
        while _primary_port(ports[0]) != primary.port:
            assert time.monotonic() < deadline, "the Sentinels did not find the primary"
            time.sleep(0.2)
        members = ",".join(f"127.0.0.1:{port}" for port in ports)
        url = f"redis+sentinel://{members}/mymaster/0"
        stack.config.write_text(stack.config.read_text() + f"redis: {{url: '{url}'}}\n")
        stack.daemon.stop()
        first, second = _start_one(stack, 0), _start_one(stack, 1)
        stack.extra["daemons"] = [first, second]
        bases = [first.url, second.url]
        assert all(a[0] == 200 for a in asyncio.run(alternating(bases, clients=4, calls=10)))
        assert stack.sim_stats()["errors"].get("40009", 0) == 0
        failover = subprocess.run(["redis-cli", "-p", str(ports[0]), "SENTINEL", "failover", "mymaster"],
                                  capture_output=True, text=True, check=False)
        assert failover.stdout.strip() == "OK", failover.stdout + failover.stderr
        deadline = time.monotonic() + 20
        while _primary_port(ports[0]) != replica_port:
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.2)
        deadline = time.monotonic() + 15
        while any(curl_json(f"{base}/readyz")[0] != 200 for base in bases):
            assert time.monotonic() < deadline, "the daemons did not follow the failover"
            time.sleep(0.2)
        answers = asyncio.run(alternating(bases, clients=4, calls=10, first=1000))
        retried = [a for a in answers if a[0] == 503]  # a call that met the switch is refused unsent
        assert all(a[0] in (200, 503) for a in answers) and len(retried) <= 4, answers[:3]
        stats = stack.sim_stats()
        assert max(stats["client_ids"].values()) == 1  # never executed twice
        assert sum(1 for a in answers if a[0] == 200) + 40 == sum(stats["client_ids"].values())
        for number in range(2):  # no daemon ever signed a nonce at or below one it had used
            audit = (stack.tmp / f"state-{number}" / "audit.jsonl").read_text().splitlines()
            nonces = [json.loads(line)["nonce"] for line in audit]
            assert nonces == sorted(nonces) and len(set(nonces)) == len(nonces)
        # A call in flight on the old primary's lease while the other daemon took the new primary's
        # (replication is asynchronous) can meet EXMO's nonce check: a 40009, resynced and retried once
        # (every answer above is a 200 or a 503 "not sent"), never a second execution.
        assert stats["errors"].get("40009", 0) <= 20
    finally:
        for process in sentinels:
            process.terminate()
            process.wait(timeout=10)
        for server in (primary, replica):
            server.stop()
        for service in stack.extra.get("daemons", []):
            service.kill9()


def test_redis_metrics(stack_on_redis: tuple[Stack, Redis]) -> None:
    """/metrics in Redis mode: lease waits, the health check's round trip, Redis errors once it stops."""
    stack, redis = stack_on_redis
    (daemon,) = daemons(stack, redis, 1)
    assert all(a[0] == 200 for a in asyncio.run(alternating([daemon.url], clients=2, calls=5)))
    time.sleep(1.2)
    metrics = subprocess.run(["curl", "-s", f"{daemon.url}/metrics"], capture_output=True, text=True,
                             check=True).stdout
    assert "exmo_proxy_lease_wait_seconds_count 10.0" in metrics
    lines = metrics.splitlines()
    latency = next(line for line in lines if line.startswith("exmo_proxy_redis_latency_seconds "))
    assert 0 < float(latency.split()[1]) < 1
    assert "exmo_proxy_redis_errors_total 0.0" in metrics
    redis.stop()
    time.sleep(1.5)
    metrics = subprocess.run(["curl", "-s", f"{daemon.url}/metrics"], capture_output=True, text=True,
                             check=True).stdout
    errors = next(line for line in metrics.splitlines() if line.startswith("exmo_proxy_redis_errors_total "))
    assert float(errors.split()[1]) >= 1
    assert "exmo_proxy_redis_latency_seconds NaN" in metrics


def _test_ca(folder: Path) -> tuple[Path, Path, Path]:
    """A throwaway CA and a server certificate for 127.0.0.1 it signed: (ca, cert, key) PEM files."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "exmo-proxy test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
          .not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    paths = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_rediss_verifies_the_server_certificate(make_stack: Callable[..., Stack], tmp_path: Path) -> None:
    """rediss:// to a server whose certificate a private CA signed: refused without `ca_file` (the
    certificate is verified), used with it, signed calls and all."""
    stack = make_stack()
    ca, cert, key = _test_ca(tmp_path / "tls")
    port = free_port()
    with (tmp_path / "redis-tls.log").open("ab") as log:
        server = subprocess.Popen(["redis-server", "--port", "0", "--tls-port", str(port), "--bind",
                                   "127.0.0.1", "--tls-cert-file", str(cert), "--tls-key-file", str(key),
                                   "--tls-ca-cert-file", str(ca), "--tls-auth-clients", "no", "--save", ""],
                                  stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, server, tmp_path / "redis-tls.log")
        text = stack.config.read_text()
        stack.config.write_text(text + f"redis: {{url: 'rediss://127.0.0.1:{port}/0'}}\n")
        refused = cli("check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file))
        assert refused.returncode != 0
        assert "CERTIFICATE_VERIFY_FAILED" in refused.stderr.upper().replace(" ", "_"), refused.stderr
        stack.config.write_text(text + f"redis: {{url: 'rediss://127.0.0.1:{port}/0', ca_file: '{ca}'}}\n")
        checked = cli("check", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file))
        assert checked.returncode == 0, checked.stderr
        stack.restart_daemon()
        assert curl_json(f"{stack.base}/readyz")[0] == 200
        assert curl_json(f"{stack.base}/v1.1/user_info", "-X", "POST")[0] == 200
    finally:
        server.terminate()
        server.wait(timeout=10)
