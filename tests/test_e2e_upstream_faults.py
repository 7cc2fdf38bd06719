"""Upstream faults: an unknown outcome is never resent; a hung call cannot stall the key (SPEC §7).

The upstream here is a deliberately broken EXMO stand-in (a raw socket server) so each fault is
exact: hang after reading the request, reset mid-answer, or nothing listening at all.
"""

from __future__ import annotations

import collections
import signal
import socket
import socketserver
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import (
    Service,
    clean_env,
    curl_json,
    fake_key,
    fake_secret,
    free_port,
    init_config,
    start,
    write_passphrase,
)

pytestmark = pytest.mark.slow

OK_BODY = b'{"uid":1,"server_date":1,"balances":{"BTC":"1"},"reserved":{"BTC":"0"}}'


class BrokenExmo(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: collections.Counter[str] = collections.Counter()
        self.release = threading.Event()
        self.redirect_to = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(socketserver.StreamRequestHandler):
    server: BrokenExmo

    def handle(self) -> None:
        while self._one_request():
            pass

    def _one_request(self) -> bool:
        line = self.rfile.readline()
        if not line:
            return False
        path = line.split()[1].decode().split("?")[0]
        length = 0
        while (header := self.rfile.readline()) not in (b"\r\n", b""):
            if header.lower().startswith(b"content-length:"):
                length = int(header.split(b":")[1])
        self.rfile.read(length)
        self.server.seen[path] += 1
        if path.endswith("/order_create"):  # hang: the request was received, no answer comes
            self.server.release.wait(30)
            return False
        if path.endswith("/ticker") and self.server.seen[path] == 1:  # first try: a 503 HTML page
            page = b"<html><body>503 Service Temporarily Unavailable</body></html>"
            self.wfile.write(b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\n"
                             b"Content-Length: " + str(len(page)).encode() + b"\r\n\r\n" + page)
            return True
        if path.endswith(("/order_book", "/user_cancelled_orders", "/user_open_orders")):  # slow, then fine
            time.sleep(0.5)
        if path.endswith("/user_cancelled_orders"):  # a private call answered 500: never resent
            self.wfile.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n\r\n")
            return True
        if path.endswith("/deposit_address"):  # a 200 that is not EXMO's JSON
            page = b"<html>Please wait while we check your browser</html>"
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: "
                             + str(len(page)).encode() + b"\r\n\r\n" + page)
            return True
        if path.endswith(("/wallet_history", "/code_check")):  # JSON cut short; JSON and then garbage
            page = b'{"result":true,"history":[{"dt":1' if "wallet" in path else b'{"result":true}<html>'
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                             + str(len(page)).encode() + b"\r\n\r\n" + page)
            return True
        if path.endswith("/user_trades"):  # a redirect to somewhere else
            where = f"{self.server.redirect_to}/v1.1/user_trades".encode()
            self.wfile.write(b"HTTP/1.1 302 Found\r\nLocation: " + where + b"\r\nContent-Length: 0\r\n\r\n")
            return True
        if path.endswith("/order_cancel"):  # reset in the middle of the answer
            self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n{\"res")
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(OK_BODY)).encode() + b"\r\n\r\n" + OK_BODY)
        return True


@pytest.fixture
def broken() -> Iterator[BrokenExmo]:
    server = BrokenExmo()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.release.set()
    server.shutdown()
    server.server_close()


def start_daemon_at(tmp: Path, upstream: str, extra: str = "") -> Service:
    pfile = write_passphrase(tmp)
    config = init_config(tmp, fake_key(), fake_secret(), pfile)
    config.write_text(config.read_text().replace("upstream_timeout_s: 15", "upstream_timeout_s: 1.5") + extra)
    return run_daemon_at(tmp, upstream)


def run_daemon_at(tmp: Path, upstream: str) -> Service:
    """The daemon of the config and passphrase in `tmp` (again, after a restart)."""
    port, config, pfile = free_port(), tmp / "exmo-proxy.yaml", tmp / "passphrase"
    return start(["run", "--config", str(config), "--passphrase-file", str(pfile), "--listen",
                  f"127.0.0.1:{port}", "--upstream", upstream], port, tmp / "daemon.log", env=clean_env())


@pytest.fixture
def daemon(tmp_path: Path, broken: BrokenExmo) -> Iterator[Service]:
    service = start_daemon_at(tmp_path, broken.url)
    yield service
    service.kill9()


def test_timeout_after_sending_is_504_unknown_and_not_resent(daemon: Service, broken: BrokenExmo) -> None:
    """A hung order_create answers 504 'outcome unknown' and reached the upstream exactly once."""
    status, body = curl_json(f"{daemon.url}/v1.1/order_create", "-X", "POST", "-d", "pair=BTC_USDT")
    assert status == 504 and body["proxy_error"] == "upstream_timeout"
    assert "outcome unknown" in body["error"] and "user_open_orders" in body["error"]
    time.sleep(0.5)
    assert broken.seen["/v1.1/order_create"] == 1


def test_a_hung_call_holds_the_key_no_longer_than_the_timeout(daemon: Service, broken: BrokenExmo) -> None:
    """While order_create hangs, a user_info on the same key is answered once the timeout frees it."""
    with ThreadPoolExecutor(2) as pool:
        hung = pool.submit(curl_json, f"{daemon.url}/v1.1/order_create", "-X", "POST")
        time.sleep(0.2)
        started = time.monotonic()
        status, body = pool.submit(curl_json, f"{daemon.url}/v1.1/user_info", "-X", "POST").result()
        waited = time.monotonic() - started
    assert hung.result()[0] == 504
    assert status == 200 and body["balances"] == {"BTC": "1"}
    assert waited < 1.5 + 1.0, f"user_info waited {waited:.2f}s behind a hung call"


def test_reset_mid_answer_is_502_unknown_and_not_resent(daemon: Service, broken: BrokenExmo) -> None:
    """A connection reset during the answer is 502 'outcome unknown', sent once; the daemon stays up."""
    status, body = curl_json(f"{daemon.url}/v1.1/order_cancel", "-X", "POST", "-d", "order_id=1")
    assert status == 502 and "outcome unknown" in body["error"]
    assert broken.seen["/v1.1/order_cancel"] == 1
    status, _ = curl_json(f"{daemon.url}/v1.1/user_info", "-X", "POST")
    assert status == 200


def test_unreachable_upstream_is_502_not_sent(tmp_path: Path) -> None:
    """Nothing listening upstream: 502 that says the request was not sent and is safe to retry."""
    service = start_daemon_at(tmp_path, f"http://127.0.0.1:{free_port()}")
    try:
        status, body = curl_json(f"{service.url}/v1.1/order_create", "-X", "POST")
        assert status == 502 and body["proxy_error"] == "upstream_unreachable"
        assert "not sent" in body["error"]
        assert curl_json(f"{service.url}/healthz")[0] == 200
    finally:
        service.kill9()


def test_a_client_that_gave_up_is_not_sent(daemon: Service, broken: BrokenExmo) -> None:
    """A queued order whose client timed out is dropped unsent: a retrying bot cannot double-order."""
    with ThreadPoolExecutor(2) as pool:
        hung = pool.submit(curl_json, f"{daemon.url}/v1.1/order_create", "-X", "POST")
        time.sleep(0.2)
        gave_up = subprocess.run(["curl", "-s", "--max-time", "0.5", "-X", "POST",
                                  f"{daemon.url}/v1.1/order_create"], capture_output=True, check=False)
        assert gave_up.returncode == 28  # curl: operation timed out
        assert hung.result()[0] == 504
    time.sleep(0.5)
    assert broken.seen["/v1.1/order_create"] == 1
    assert " 499 " in daemon.log()


def _sigterm_during(daemon: Service, method: str, calls: int = 10) -> list[int]:
    """`calls` private calls, all inside the daemon (one in flight, the rest queued for the key) when
    SIGTERM arrives; their statuses."""
    url = f"{daemon.url}/v1.1/{method}"
    with ThreadPoolExecutor(calls) as pool:
        first = pool.submit(curl_json, url, "-X", "POST")
        time.sleep(0.2)
        queued = [pool.submit(curl_json, url, "-X", "POST") for _ in range(calls - 1)]
        time.sleep(0.3)
        daemon.proc.send_signal(signal.SIGTERM)
        return sorted(f.result()[0] for f in [first, *queued])


def test_sigterm_finishes_the_calls_it_accepted(daemon: Service, broken: BrokenExmo) -> None:
    """SIGTERM with 10 calls inside, nine queued behind a slow one: all 10 are sent and answered 200
    (their answers fit in shutdown_grace_s), and the daemon exits 0."""
    assert _sigterm_during(daemon, "user_open_orders") == [200] * 10
    assert daemon.proc.wait(timeout=30) == 0
    assert broken.seen["/v1.1/user_open_orders"] == 10


def test_sigterm_refuses_unsent_what_the_grace_cannot_answer(tmp_path: Path, broken: BrokenExmo) -> None:
    """With a grace of 2 s and an upstream timeout of 1.5 s, calls may be sent for 0.5 s after SIGTERM:
    the hung one in flight gets its 504, the nine queued behind it 503 and are never sent; exit 0."""
    daemon = start_daemon_at(tmp_path, broken.url, "shutdown_grace_s: 2\n")
    try:
        assert _sigterm_during(daemon, "order_create") == [503] * 9 + [504]
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.kill9()
    assert broken.seen["/v1.1/order_create"] == 1


def test_while_draining_readyz_says_so_and_new_connections_are_refused(tmp_path: Path,
                                                                      broken: BrokenExmo) -> None:
    """From the first moment of SIGTERM the listener is closed, and /readyz on the management
    listener answers 503 "draining" until the call inside has its answer."""
    management = free_port()
    daemon = start_daemon_at(tmp_path, broken.url, f"management_listen: 127.0.0.1:{management}\n")
    try:
        with ThreadPoolExecutor(1) as pool:
            hung = pool.submit(curl_json, f"{daemon.url}/v1.1/order_create", "-X", "POST")
            time.sleep(0.3)
            daemon.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            status, body = curl_json(f"http://127.0.0.1:{management}/readyz")
            assert (status, body["status"]) == (503, "draining")
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", daemon.port), timeout=2).close()
            assert hung.result()[0] == 504
        assert daemon.proc.wait(timeout=30) == 0
    finally:
        daemon.kill9()


def test_redirects_are_not_followed(daemon: Service, broken: BrokenExmo) -> None:
    """A 302 from upstream is not followed: the client gets a 502 saying so; the other host hears nothing."""
    elsewhere = BrokenExmo()
    thread = threading.Thread(target=elsewhere.serve_forever, daemon=True)
    thread.start()
    try:
        broken.redirect_to = elsewhere.url
        status, body = curl_json(f"{daemon.url}/v1.1/user_trades", "-X", "POST")
        assert (status, body["proxy_error"]) == (502, "upstream_invalid") and "redirect" in body["error"]
        assert broken.seen["/v1.1/user_trades"] == 1
        assert not elsewhere.seen
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()


def test_public_reads_are_retried_private_calls_are_not(daemon: Service, broken: BrokenExmo) -> None:
    """A 503 page on ticker is retried and the client gets the data; a private 500 is sent once and
    reported as a 502 with an unknown outcome."""
    status, body = curl_json(f"{daemon.url}/v1.1/ticker")
    assert status == 200 and body["uid"] == 1
    assert broken.seen["/v1.1/ticker"] == 2
    status, body = curl_json(f"{daemon.url}/v1.1/user_cancelled_orders", "-X", "POST")
    assert (status, body["proxy_error"]) == (502, "upstream_invalid") and "outcome unknown" in body["error"]
    assert broken.seen["/v1.1/user_cancelled_orders"] == 1


def test_identical_public_reads_share_one_upstream_call(daemon: Service, broken: BrokenExmo) -> None:
    """Ten bots asking for the same order book at once cost one upstream request."""
    with ThreadPoolExecutor(10) as pool:
        url = f"{daemon.url}/v1.1/order_book?pair=BTC_USDT"
        answers = list(pool.map(lambda _: curl_json(url), range(10)))
    assert all(status == 200 for status, _ in answers)
    assert broken.seen["/v1.1/order_book"] == 1


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that nobody trusts, as a man in the middle would present."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.exmo.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_an_untrusted_certificate_is_refused_before_sending(tmp_path: Path) -> None:
    """TLS to an upstream whose certificate does not verify: 502 'not sent'; no request reaches it."""
    import ssl

    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = BrokenExmo()
    server.socket = context.wrap_socket(server.socket, server_side=True, do_handshake_on_connect=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    service = start_daemon_at(tmp_path, f"https://127.0.0.1:{server.server_address[1]}")
    try:
        status, body = curl_json(f"{service.url}/v1.1/order_create", "-X", "POST")
        assert (status, body["proxy_error"]) == (502, "upstream_unreachable")
        assert "TLS" in body["error"] and "not sent" in body["error"]
        assert not server.seen
    finally:
        service.kill9()
        server.shutdown()
        server.server_close()


def test_a_non_json_200_is_not_passed_off_as_an_answer(daemon: Service, broken: BrokenExmo) -> None:
    """A 200 with an HTML page (a captive portal, a CDN error) is a 502 with an unknown outcome."""
    status, body = curl_json(f"{daemon.url}/v1.1/deposit_address", "-X", "POST")
    assert (status, body["proxy_error"]) == (502, "upstream_invalid")
    assert "outcome unknown" in body["error"] and broken.seen["/v1.1/deposit_address"] == 1


@pytest.mark.parametrize("method", ["wallet_history", "code_check"])
def test_a_damaged_json_200_is_not_passed_off_as_an_answer(daemon: Service, broken: BrokenExmo,
                                                            method: str) -> None:
    """A 200 whose JSON is cut short, or followed by garbage, is a 502 with an unknown outcome, sent once."""
    status, body = curl_json(f"{daemon.url}/v1.1/{method}", "-X", "POST")
    assert (status, body["proxy_error"]) == (502, "upstream_invalid")
    assert "not valid JSON" in body["error"] and "outcome unknown" in body["error"]
    assert broken.seen[f"/v1.1/{method}"] == 1


def _keyed(daemon: Service, key: str, *extra: str) -> tuple[int, Any]:
    return curl_json(f"{daemon.url}/v1.1/order_create", "-X", "POST", "-H", f"Idempotency-Key: {key}",
                     "-d", "pair=BTC_USDT", "-d", "quantity=1", "-d", "price=1", "-d", "type=buy", *extra)


def test_a_keyed_call_whose_outcome_is_unknown_is_not_sent_again(daemon: Service, broken: BrokenExmo) -> None:
    """The first answer was a 504 "outcome unknown": the retry gets that 504 again, and EXMO sees one call."""
    first = _keyed(daemon, "hung-1")
    assert (first[0], first[1]["proxy_error"]) == (504, "upstream_timeout")
    assert _keyed(daemon, "hung-1") == first
    assert broken.seen["/v1.1/order_create"] == 1


def test_a_retry_while_the_first_is_in_flight_waits_or_is_409(daemon: Service, broken: BrokenExmo) -> None:
    """A retry that cannot wait for the first call's answer gets 409 and is not sent; one that comes back
    later gets the first answer."""
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_keyed, daemon, "inflight-1")
        time.sleep(0.3)
        status, body = _keyed(daemon, "inflight-1", "-H", "X-Max-Wait-Ms: 200")
        assert (status, body["proxy_error"]) == (409, "idempotency_in_flight")
        assert first.result()[0] == 504
    assert _keyed(daemon, "inflight-1") == first.result()
    assert broken.seen["/v1.1/order_create"] == 1


def test_a_keyed_call_cut_off_by_kill9_is_never_sent_again(tmp_path: Path, daemon: Service,
                                                           broken: BrokenExmo) -> None:
    """kill -9 between sending and answering: after the restart the retry is answered 502 "outcome
    unknown" and not sent (the record was durable before the call was signed); so is the next retry."""
    with ThreadPoolExecutor(1) as pool:
        cut = pool.submit(_keyed, daemon, "killed-1")
        deadline = time.monotonic() + 5
        while broken.seen["/v1.1/order_create"] < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        daemon.kill9()
        with pytest.raises(subprocess.CalledProcessError):
            cut.result()  # the connection died with the daemon: curl has no answer
    again = run_daemon_at(tmp_path, broken.url)
    try:
        status, body = _keyed(again, "killed-1")
        assert (status, body["proxy_error"]) == (502, "outcome_unknown")
        assert _keyed(again, "killed-1") == (status, body)
    finally:
        again.kill9()
    assert broken.seen["/v1.1/order_create"] == 1
