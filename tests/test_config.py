"""Config validation into frozen dataclasses: every problem names its dotted key; secrets stay sealed."""

from __future__ import annotations

import asyncio
import copy
import re
import sys
from pathlib import Path
from typing import Any

import pytest

from proxy.config import sections
from proxy.config.accounts import Account, AccountPolicy
from proxy.config.addresses import Listen
from proxy.config.checks import ConfigError
from proxy.config.load import load_config
from proxy.config.model import keep_restart_only, validate
from proxy.config.sections import Limits
from proxy.config.template import new_config_text
from proxy.config.yamlfile import dump, parse_yaml
from proxy.vault import encryption as vault
from proxy.vault.passphrase import PassphraseSources
from proxy.vault.secret import Secret

KEY = "K-" + "0123456789abcdef0123456789abcdef01234567"
KEY_2 = "K-" + "89abcdef0123456789abcdef0123456789abcdef"
SECRET = "S-" + "fedcba9876543210fedcba9876543210fedcba98"
PASSPHRASE = "correct horse battery staple"
CONFIG_DIR = Path("/etc/exmo-proxy")
CONFIG_PATH = CONFIG_DIR / "exmo-proxy.yaml"


@pytest.fixture(scope="module")
def config_text() -> str:
    """A config as `exmo-proxy init` writes it, with a real encryption header (one Argon2 run)."""
    return new_config_text("main", KEY, Secret(SECRET), Secret(PASSPHRASE))


@pytest.fixture
def doc(config_text: str) -> dict[str, Any]:
    return parse_yaml(config_text, "test.yaml")


@pytest.fixture(autouse=True)
def _no_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)


def _two_accounts(doc: dict[str, Any]) -> dict[str, Any]:
    doc["accounts"]["second"] = {**doc["accounts"]["main"], "key": KEY_2}
    return doc


def _error(doc: dict[str, Any], path: Path = CONFIG_PATH) -> str:
    with pytest.raises(ConfigError) as info:
        validate(doc, path)
    return str(info.value)


def test_init_output_validates(doc: dict[str, Any]) -> None:
    """The config `init` writes validates with the documented defaults."""
    document = validate(doc, CONFIG_PATH)
    assert document.listen == Listen("127.0.0.1", 8080)
    assert document.upstream == "https://api.exmo.com"
    assert [a.name for a in document.accounts] == ["main"]
    assert document.accounts[0].key == KEY
    assert document.accounts[0].secret.startswith(vault.VALUE_PREFIX)
    assert document.limits == Limits(rate_per_second=10.0, upstream_timeout_s=15.0)
    assert (document.kdf.m, document.kdf.t, document.kdf.p) == (64 * 1024, 3, 4)
    assert document.log_level == "info"


def test_document_repr_never_contains_sealed_secret(doc: dict[str, Any]) -> None:
    """Even the sealed secret text stays out of a Document's repr."""
    document = validate(doc, CONFIG_PATH)
    assert document.accounts[0].secret not in repr(document)


# --- unknown keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("where", "named"),
    [
        pytest.param((), "colour", id="top-level"),
        pytest.param(("accounts", "main"), "accounts.main.colour", id="account"),
        pytest.param(("limits",), "limits.colour", id="limits"),
        pytest.param(("encryption",), "encryption.colour", id="encryption"),
        pytest.param(("encryption", "kdf"), "encryption.kdf.colour", id="kdf"),
    ],
)
def test_unknown_keys_are_named(doc: dict[str, Any], where: tuple[str, ...], named: str) -> None:
    """A typo'd key anywhere is refused, and the message gives its full dotted path."""
    target = doc
    for part in where:
        target = target[part]
    target["colour"] = "blue"
    message = _error(doc)
    assert re.search(rf"unknown key {re.escape(named)}\b", message), message


def test_several_unknown_keys_are_all_named(doc: dict[str, Any]) -> None:
    """All unknown keys at a level are reported at once."""
    doc["colour"] = 1
    doc["shape"] = 2
    message = _error(doc)
    assert "colour" in message
    assert "shape" in message


# --- accounts -----------------------------------------------------------------------------------------


def test_plaintext_secret_refused_naming_the_key(doc: dict[str, Any]) -> None:
    """A plaintext secret is refused naming accounts.<name>.secret, and is not echoed back."""
    doc["accounts"]["main"]["secret"] = SECRET
    message = _error(doc)
    assert "accounts.main.secret" in message
    assert "plaintext" in message
    assert SECRET not in message
    assert SECRET[2:10] not in message


@pytest.mark.parametrize(
    ("mutate", "named"),
    [
        pytest.param(lambda d: d["accounts"]["main"].pop("key"), "accounts.main.key: missing", id="no-key"),
        pytest.param(lambda d: d["accounts"]["main"].pop("secret"), "accounts.main.secret: missing",
                     id="no-secret"),
        pytest.param(lambda d: d["accounts"]["main"].update(key="K- with spaces"), "accounts.main.key",
                     id="key-with-space"),
        pytest.param(lambda d: d["accounts"]["main"].update(secret=""), "accounts.main.secret",
                     id="empty-secret"),
        pytest.param(lambda d: d["accounts"]["main"].update(allow="user_info"), "accounts.main.allow",
                     id="allow-not-a-list"),
        pytest.param(lambda d: d["accounts"]["main"].update(allow_withdrawals="yes"),
                     "accounts.main.allow_withdrawals", id="withdrawals-not-bool"),
        pytest.param(lambda d: d["accounts"].update({"bad name": d["accounts"]["main"]}), "'bad name'",
                     id="invalid-account-name"),
        pytest.param(lambda d: d.update(accounts={}), "accounts:", id="no-accounts"),
        pytest.param(lambda d: d.pop("accounts"), "accounts:", id="accounts-missing"),
        pytest.param(lambda d: d["accounts"].update(main="K-x"), "accounts.main: must be a mapping",
                     id="account-not-a-mapping"),
    ],
)
def test_account_problems_named(doc: dict[str, Any], mutate: Any, named: str) -> None:
    """Each account problem is a ConfigError naming the account key."""
    mutate(doc)
    assert named in _error(doc)


def test_account_allow_list_and_withdrawals(doc: dict[str, Any]) -> None:
    """allow becomes a frozenset; allow_withdrawals defaults to False and accepts a boolean."""
    doc["accounts"]["main"]["allow"] = ["user_info", "order_create"]
    doc["accounts"]["main"]["allow_withdrawals"] = True
    entry = validate(doc, CONFIG_PATH).accounts[0]
    assert entry.policy.allow == frozenset({"user_info", "order_create"})
    assert entry.policy.allow_withdrawals is True


def test_account_repr_never_contains_the_secret() -> None:
    """An Account's repr and str show neither the secret nor any of its characters' run."""
    account = Account("main", KEY, Secret(SECRET), AccountPolicy(allow=frozenset({"user_info"})))
    for text in (repr(account), str(account), f"{account}", f"{account!r}"):
        assert SECRET not in text
        assert SECRET[2:12] not in text
    assert KEY in repr(account)


# --- listen --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("127.0.0.1:8080", Listen("127.0.0.1", 8080), id="ipv4"),
        pytest.param("127.0.0.2:1", Listen("127.0.0.2", 1), id="any-127-address"),
        pytest.param("localhost:65535", Listen("localhost", 65535), id="localhost-max-port"),
        pytest.param("[::1]:8080", Listen("::1", 8080), id="ipv6-bracketed"),
        pytest.param(":9000", Listen("127.0.0.1", 9000), id="port-only"),
        pytest.param("unix:/run/exmo-proxy/proxy.sock", Listen(unix_path="/run/exmo-proxy/proxy.sock"),
                     id="unix-socket"),
    ],
)
def test_listen_accepted(doc: dict[str, Any], text: str, expected: Listen) -> None:
    """Loopback host:port (IPv4, bracketed IPv6, localhost) and absolute unix sockets are accepted."""
    doc["listen"] = text
    listen = validate(doc, CONFIG_PATH).listen
    assert listen == expected
    assert listen.is_loopback


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("0.0.0.0:8080", "not a loopback", id="all-interfaces"),
        pytest.param("192.168.1.10:8080", "not a loopback", id="lan-address"),
        pytest.param("[::]:8080", "not a loopback", id="ipv6-any"),
        pytest.param("example.com:8080", "not a loopback", id="hostname"),
        pytest.param("unix:run/proxy.sock", "absolute", id="unix-relative"),
        pytest.param("127.0.0.1", "HOST:PORT", id="no-port"),
        pytest.param("127.0.0.1:0", "HOST:PORT", id="port-zero"),
        pytest.param("127.0.0.1:65536", "HOST:PORT", id="port-too-large"),
        pytest.param("127.0.0.1:http", "HOST:PORT", id="port-name"),
        pytest.param("127.0.0.1:-1", "HOST:PORT", id="negative-port"),
        pytest.param("", "non-empty", id="empty"),
    ],
)
def test_listen_refused(doc: dict[str, Any], text: str, fragment: str) -> None:
    """Non-loopback or malformed listen values are refused naming `listen`."""
    doc["listen"] = text
    message = _error(doc)
    assert message.startswith("listen:")
    assert fragment in message


def test_listen_override_is_validated(doc: dict[str, Any]) -> None:
    """A CLI override goes through the same checks as the file."""
    with pytest.raises(ConfigError, match="not a loopback"):
        validate(doc, CONFIG_PATH, {"listen": "0.0.0.0:8080"})
    assert validate(doc, CONFIG_PATH, {"listen": "127.0.0.1:9999"}).listen.port == 9999


def test_listen_url() -> None:
    """listen.url() brackets IPv6 hosts and prints unix sockets as unix:PATH."""
    assert Listen("::1", 8080).url() == "http://[::1]:8080"
    assert Listen("127.0.0.1", 80).url() == "http://127.0.0.1:80"
    assert Listen(unix_path="/run/p.sock").url() == "unix:/run/p.sock"


# --- ws_upstream and streams (the WebSocket relay) ------------------------------------------------------


def test_stream_defaults(doc: dict[str, Any]) -> None:
    document = validate(doc, CONFIG_PATH)
    assert document.ws_upstream == "wss://ws-api.exmo.com:443"
    assert document.streams == sections.Streams(max_open=256, max_per_client=16, send_timeout_s=10.0)


@pytest.mark.parametrize(("text", "expected"), [
    ("wss://ws-api.exmo.com:443", "wss://ws-api.exmo.com:443"),
    ("wss://ws-api.exmo.me/", "wss://ws-api.exmo.me"),
    ("ws://127.0.0.1:8081", "ws://127.0.0.1:8081"),
    ("ws://[::1]:8081", "ws://[::1]:8081"),
])
def test_ws_upstream_accepted(doc: dict[str, Any], text: str, expected: str) -> None:
    doc["ws_upstream"] = text
    assert validate(doc, CONFIG_PATH).ws_upstream == expected


@pytest.mark.parametrize(("text", "fragment"), [
    ("ws://ws-api.exmo.com", "wss is required unless the host is loopback"),
    ("https://ws-api.exmo.com", "is not a ws(s) URL"),
    ("wss://ws-api.exmo.com/v1/private", "give only scheme, host and port"),
    ("wss://ws-api.exmo.com:99999", "invalid port"),
    ("", "non-empty string"),
])
def test_ws_upstream_refused(doc: dict[str, Any], text: str, fragment: str) -> None:
    doc["ws_upstream"] = text
    message = _error(doc)
    assert message.startswith("ws_upstream:") and fragment in message


def test_ws_upstream_from_the_command_line(doc: dict[str, Any]) -> None:
    document = validate(doc, CONFIG_PATH, {"ws_upstream": "ws://127.0.0.1:9"})
    assert document.ws_upstream == "ws://127.0.0.1:9"


@pytest.mark.parametrize(("streams", "fragment"), [
    ({"max_open": 0}, "streams.max_open: must be a whole number in 1..100000"),
    ({"max_per_client": 2.5}, "streams.max_per_client: must be a whole number"),
    ({"send_timeout_s": 0}, "streams.send_timeout_s: must be a number of seconds in 0.1..600"),
    ({"send_timeout_s": True}, "streams.send_timeout_s"),
    ({"buffer": 1}, "streams.buffer"),
])
def test_streams_section_refused(doc: dict[str, Any], streams: dict[str, Any], fragment: str) -> None:
    doc["streams"] = streams
    assert fragment in _error(doc)


def test_a_client_may_be_kept_off_private_streams(doc: dict[str, Any]) -> None:
    doc["clients"] = {"bot": {"token_sha256": "0" * 64, "accounts": ["main"], "streams": False}}
    assert validate(doc, CONFIG_PATH).clients["bot"].streams is False
    doc["clients"]["bot"]["streams"] = "no"
    assert "clients.bot.streams: must be true or false" in _error(doc)


# --- upstream ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("https://api.exmo.com", "https://api.exmo.com", id="default"),
        pytest.param("https://api.exmo.me/", "https://api.exmo.me", id="trailing-slash-stripped"),
        pytest.param("https://api.exmo.com:443", "https://api.exmo.com:443", id="explicit-port"),
        pytest.param("http://127.0.0.1:9000", "http://127.0.0.1:9000", id="http-loopback-simulator"),
        pytest.param("http://localhost:9000", "http://localhost:9000", id="http-localhost"),
        pytest.param("http://[::1]:9000", "http://[::1]:9000", id="http-ipv6-loopback"),
    ],
)
def test_upstream_accepted(doc: dict[str, Any], text: str, expected: str) -> None:
    """https anywhere, or plain http to a loopback host (the simulator)."""
    doc["upstream"] = text
    assert validate(doc, CONFIG_PATH).upstream == expected


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("http://api.exmo.com", "https is required", id="http-remote"),
        pytest.param("http://127.0.0.1.nip.io", "https is required", id="http-loopback-lookalike"),
        pytest.param("https://api.exmo.com/v1.1", "only scheme and host", id="path"),
        pytest.param("https://api.exmo.com?x=1", "only scheme and host", id="query"),
        pytest.param("https://api.exmo.com#x", "only scheme and host", id="fragment"),
        pytest.param("https://user@api.exmo.com", "only scheme and host", id="userinfo"),
        pytest.param("ftp://api.exmo.com", "not an http(s) URL", id="ftp"),
        pytest.param("api.exmo.com", "not an http(s) URL", id="no-scheme"),
        pytest.param("https://", "not an http(s) URL", id="no-host"),
    ],
)
def test_upstream_refused(doc: dict[str, Any], text: str, fragment: str) -> None:
    """Anything but scheme://host[:port] is refused; http only to loopback."""
    doc["upstream"] = text
    message = _error(doc)
    assert message.startswith("upstream:")
    assert fragment in message


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("https://api.exmo.com:99999", id="port-out-of-range"),
        pytest.param("https://api.exmo.com:https", id="port-not-a-number"),
    ],
)
def test_upstream_with_invalid_port_refused(doc: dict[str, Any], text: str) -> None:
    """An upstream whose port is not 1..65535 is a config error naming `upstream`."""
    doc["upstream"] = text
    assert _error(doc).startswith("upstream:")


# --- limits --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("limits", "expected"),
    [
        pytest.param({}, Limits(), id="defaults"),
        pytest.param({"rate_per_second": 0.1}, Limits(rate_per_second=0.1), id="rate-min"),
        pytest.param({"rate_per_second": 100_000}, Limits(rate_per_second=100_000.0), id="rate-max"),
        pytest.param({"max_body_bytes": 256}, Limits(max_body_bytes=256), id="body-min"),
        pytest.param({"max_wait_s": 0}, Limits(max_wait_s=0.0), id="no-waiting"),
        pytest.param({"upstream_timeout_s": 600, "connect_timeout_s": 0.1},
                     Limits(upstream_timeout_s=600.0, connect_timeout_s=0.1), id="timeouts-edges"),
    ],
)
def test_limits_accepted(doc: dict[str, Any], limits: dict[str, Any], expected: Limits) -> None:
    """Limits within their inclusive bounds are accepted; unset ones take the defaults."""
    doc["limits"] = limits
    result = validate(doc, CONFIG_PATH).limits
    assert result == expected
    assert isinstance(result.max_body_bytes, int)


def test_limits_absent_means_defaults(doc: dict[str, Any]) -> None:
    """Without a limits block every limit has its default."""
    del doc["limits"]
    assert validate(doc, CONFIG_PATH).limits == Limits()


@pytest.mark.parametrize(
    ("limits", "named"),
    [
        pytest.param({"rate_per_second": 0}, "limits.rate_per_second", id="rate-zero"),
        pytest.param({"rate_per_second": 100_001}, "limits.rate_per_second", id="rate-too-high"),
        pytest.param({"rate_per_second": "10"}, "limits.rate_per_second", id="rate-string"),
        pytest.param({"rate_per_second": True}, "limits.rate_per_second", id="rate-bool"),
        pytest.param({"rate_per_second": float("nan")}, "limits.rate_per_second", id="rate-nan"),
        pytest.param({"max_body_bytes": 255}, "limits.max_body_bytes", id="body-too-small"),
        pytest.param({"max_body_bytes": 16 * 1024 * 1024 + 1}, "limits.max_body_bytes", id="body-too-large"),
        pytest.param({"upstream_timeout_s": 0}, "limits.upstream_timeout_s", id="timeout-zero"),
        pytest.param({"connect_timeout_s": 121}, "limits.connect_timeout_s", id="connect-too-long"),
        pytest.param({"max_wait_s": -1}, "limits.max_wait_s", id="negative-wait"),
        pytest.param({"max_wait_s": None}, "limits.max_wait_s", id="null"),
        pytest.param({"burst": 5}, "limits.burst", id="unknown-limit"),
        pytest.param([1, 2], "limits: must be a mapping", id="not-a-mapping"),
    ],
)
def test_limits_refused(doc: dict[str, Any], limits: Any, named: str) -> None:
    """An out-of-range, mistyped or unknown limit is refused naming limits.<name>."""
    doc["limits"] = limits
    assert named in _error(doc)


# --- default_account --------------------------------------------------------------------------------


def test_single_account_is_the_implicit_default(doc: dict[str, Any]) -> None:
    """With one account and no default_account, that account is the default."""
    assert validate(doc, CONFIG_PATH).default_account == "main"


def test_several_accounts_have_no_implicit_default(doc: dict[str, Any]) -> None:
    """With several accounts and no default_account, there is no default (clients must choose)."""
    assert validate(_two_accounts(doc), CONFIG_PATH).default_account is None


def test_explicit_default_account(doc: dict[str, Any]) -> None:
    """default_account picks one of several accounts."""
    doc = _two_accounts(doc)
    doc["default_account"] = "second"
    assert validate(doc, CONFIG_PATH).default_account == "second"


@pytest.mark.parametrize(
    "two", [pytest.param(False, id="one-account"), pytest.param(True, id="two-accounts")]
)
def test_unknown_default_account_refused(doc: dict[str, Any], two: bool) -> None:
    """A default_account that names no configured account is refused."""
    if two:
        doc = _two_accounts(doc)
    doc["default_account"] = "nobody"
    message = _error(doc)
    assert message.startswith("default_account:")
    assert "'nobody'" in message


# --- other top-level keys ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mutate", "fragment"),
    [
        pytest.param(lambda d: d.update(log_level="verbose"), "log_level", id="bad-log-level"),
        pytest.param(lambda d: d.update(clients={"x": "token"}), "clients", id="clients-unsupported"),
        pytest.param(lambda d: d.pop("encryption"), "encryption: must be a mapping", id="no-encryption"),
        pytest.param(lambda d: d["encryption"].update(version=2), "encryption.version", id="enc-version"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(alg="scrypt"), "encryption.kdf.alg",
                     id="kdf-alg"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(m="65536"), "encryption.kdf.m",
                     id="kdf-m-string"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(t=True), "encryption.kdf.t", id="kdf-t-bool"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(m=4 * 1024 * 1024), "encryption.kdf.m",
                     id="kdf-m-too-large"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(p=0), "encryption.kdf.p", id="kdf-p-zero"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(salt="c2FsdA"), "encryption.kdf.salt",
                     id="kdf-salt-short"),
        pytest.param(lambda d: d["encryption"]["kdf"].update(salt="abcde"), "encryption.kdf.salt",
                     id="kdf-salt-bad-base64"),
        pytest.param(lambda d: d["encryption"].pop("wrapped_key"), "encryption.wrapped_key",
                     id="no-wrapped-key"),
    ],
)
def test_other_problems_named(doc: dict[str, Any], mutate: Any, fragment: str) -> None:
    """log_level, clients and the encryption header are checked, naming the key."""
    mutate(doc)
    assert fragment in _error(doc)


@pytest.mark.parametrize("level", ["debug", "info", "warning", "error"])
def test_log_levels_accepted(doc: dict[str, Any], level: str) -> None:
    """Each documented log level is accepted."""
    doc["log_level"] = level
    assert validate(doc, CONFIG_PATH).log_level == level


def test_validate_does_not_mutate_its_input(doc: dict[str, Any]) -> None:
    """Validation (with overrides) leaves the parsed document unchanged for later edits."""
    before = copy.deepcopy(doc)
    validate(doc, CONFIG_PATH, {"listen": "127.0.0.1:9999"})
    assert doc == before


# --- state_dir -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("exmo-proxy-state", CONFIG_DIR / "exmo-proxy-state", id="relative"),
        pytest.param("../state", CONFIG_DIR / "../state", id="relative-parent"),
        pytest.param("/var/lib/exmo-proxy", Path("/var/lib/exmo-proxy"), id="absolute"),
    ],
)
def test_state_dir_is_relative_to_the_config_file(doc: dict[str, Any], value: str, expected: Path) -> None:
    """A relative state_dir is resolved against the config file's directory, not the cwd."""
    doc["state_dir"] = value
    assert validate(doc, CONFIG_PATH).state_dir == expected


def test_state_dir_relative_to_a_relative_config_path(
    doc: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With a relative config path, state_dir lands beside the file, as an absolute path."""
    (tmp_path / "conf").mkdir()
    monkeypatch.chdir(tmp_path)
    doc["state_dir"] = "st"
    state_dir = validate(doc, Path("conf/exmo-proxy.yaml")).state_dir
    assert state_dir == tmp_path.resolve() / "conf" / "st"
    assert state_dir.is_absolute()


def test_state_dir_default(doc: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset, state_dir is $STATE_DIRECTORY (systemd) or exmo-proxy-state beside the file."""
    doc.pop("state_dir", None)
    assert validate(doc, CONFIG_PATH).state_dir == CONFIG_DIR / "exmo-proxy-state"
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/exmo-proxy")
    assert validate(doc, CONFIG_PATH).state_dir == Path("/var/lib/exmo-proxy")


def test_state_dir_must_be_a_string(doc: dict[str, Any]) -> None:
    """A non-string state_dir is refused naming the key."""
    doc["state_dir"] = 5
    assert "state_dir" in _error(doc)


# --- load_config end to end ---------------------------------------------------------------------------


def _sources(tmp_path: Path, passphrase: str) -> PassphraseSources:
    file = tmp_path / "passphrase"
    file.write_text(passphrase + "\n")
    return PassphraseSources(explicit=str(file), env={}, docker_secret=tmp_path / "absent",
                             is_tty=lambda: False)


ISOLATED = pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "child-process"])


@ISOLATED
def test_load_config_decrypts_with_the_passphrase_file(config_text: str, tmp_path: Path,
                                                       isolated: bool) -> None:
    """load_config reads, validates and decrypts (in this process, or in the daemon's unseal child);
    state_dir is beside the file."""
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(config_text)
    config = load_config(path, _sources(tmp_path, PASSPHRASE), isolated=isolated)
    assert list(config.accounts) == ["main"]
    account = config.accounts["main"]
    assert account.key == KEY
    assert account.secret.reveal() == SECRET
    assert config.default_account == "main"
    assert config.state_dir == tmp_path.resolve() / "exmo-proxy-state"
    assert SECRET not in repr(config)
    with pytest.raises(TypeError):
        config.accounts["x"] = account  # type: ignore[index]


@ISOLATED
def test_load_config_wrong_passphrase(config_text: str, tmp_path: Path, isolated: bool) -> None:
    """A wrong passphrase is an UnlockError and nothing is decrypted."""
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(config_text)
    with pytest.raises(vault.UnlockError) as info:
        load_config(path, _sources(tmp_path, PASSPHRASE + "x"), isolated=isolated)
    assert PASSPHRASE not in str(info.value)


@ISOLATED
def test_load_config_secret_moved_between_accounts(config_text: str, tmp_path: Path, isolated: bool) -> None:
    """A sealed secret copied to another account fails, naming that account's secret path."""
    doc = _two_accounts(parse_yaml(config_text, "t"))
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(dump(doc))
    with pytest.raises(vault.ValueAuthError, match=r"accounts\.second\.secret"):
        load_config(path, _sources(tmp_path, PASSPHRASE), isolated=isolated)


def test_load_config_validates_before_asking_for_a_passphrase(config_text: str, tmp_path: Path) -> None:
    """An invalid file is reported without consulting any passphrase source."""
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(config_text.replace("listen: 127.0.0.1:8080", "listen: 0.0.0.0:8080"))

    def no_prompt(_: str) -> str:
        raise AssertionError("the passphrase must not be asked for")

    sources = PassphraseSources(env={}, docker_secret=tmp_path / "absent", is_tty=lambda: True,
                                prompt=no_prompt)
    with pytest.raises(ConfigError, match="loopback"):
        load_config(path, sources)


def test_load_config_missing_file(tmp_path: Path) -> None:
    """A missing config file is a ConfigError naming it."""
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(tmp_path / "absent.yaml", _sources(tmp_path, PASSPHRASE))


def test_withdraw_destinations_parse(doc: dict[str, Any]) -> None:
    """withdraw_addresses entries are plain addresses or {address, invoice, transport} mappings."""
    doc["accounts"]["main"]["withdraw_addresses"] = {
        "btc": ["bc1qa"], "XRP": [{"address": "rX", "invoice": "42"}],
        "USDT": [{"address": "T", "transport": "TRC20"}],
    }
    rules = validate(doc, CONFIG_PATH).accounts[0].policy
    assert rules.withdraw_addresses is not None
    assert rules.withdraw_addresses["BTC"][0].address == "bc1qa"
    assert rules.withdraw_addresses["XRP"][0].invoice == "42"
    doc["accounts"]["main"]["withdraw_addresses"] = {"BTC": [{"adress": "typo"}]}
    with pytest.raises(ConfigError, match=r"withdraw_addresses\.BTC"):
        validate(doc, CONFIG_PATH)


def test_a_failed_unseal_child_is_one_clear_error(config_text: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """If the child cannot run at all, the daemon says so (FormatError → exit 2), no traceback text."""
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(config_text)
    monkeypatch.setattr("sys.executable", "/bin/false")
    with pytest.raises(vault.FormatError, match="the unlock process failed"):
        load_config(path, _sources(tmp_path, PASSPHRASE), isolated=True)


@pytest.mark.parametrize("key, value, message", [
    ("access_log", "no", "access_log: must be true or false"),
    ("metrics", 1, "metrics: must be true or false"),
    ("event_loop", "trio", "event_loop: must be one of auto, asyncio, uvloop"),
    ("audit", {"fsync": "yes"}, "audit.fsync: must be true or false"),
])
def test_feature_switches_are_checked(doc: dict[str, Any], key: str, value: Any, message: str) -> None:
    doc[key] = value
    assert message in _error(doc)


def test_feature_switches_default_on_and_parse(doc: dict[str, Any]) -> None:
    assert validate(doc, CONFIG_PATH).features == sections.Features(True, True, "auto")
    assert validate(doc, CONFIG_PATH).audit.fsync is False
    doc.update(access_log=False, metrics=False, event_loop="asyncio", audit={"fsync": True})
    document = validate(doc, CONFIG_PATH)
    assert document.features == sections.Features(access_log=False, metrics=False, event_loop="asyncio")
    assert document.audit.fsync is True


def test_event_loop_uvloop_missing_is_one_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from proxy.ops.server import loop_runner

    monkeypatch.setitem(sys.modules, "uvloop", None)  # as if not installed
    with pytest.raises(ConfigError, match="uvloop is not installed"):
        loop_runner("uvloop")
    assert loop_runner("auto") is asyncio.run
    assert loop_runner("asyncio") is asyncio.run


def test_the_unseal_child_ignores_a_planted_module(config_text: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """A `proxy/vault/unseal.py` in the working directory (or on PYTHONPATH) never receives the passphrase:
    the child runs isolated, from /, and imports this package by its own path."""
    trap = tmp_path / "trap"
    (trap / "proxy" / "vault").mkdir(parents=True)
    stolen = tmp_path / "stolen"
    for package in ("proxy", "proxy/vault"):
        (trap / package / "__init__.py").write_text("")
    for module in ("proxy/unseal.py", "proxy/vault/unseal.py"):  # where it was, and where it is
        (trap / module).write_text(
            f"import sys\ndef main():\n    open({str(stolen)!r}, 'wb').write(sys.stdin.buffer.read())\n")
    monkeypatch.chdir(trap)
    monkeypatch.setenv("PYTHONPATH", str(trap))
    path = tmp_path / "exmo-proxy.yaml"
    path.write_text(config_text)
    config = load_config(path, _sources(tmp_path, PASSPHRASE), isolated=True)
    assert config.accounts["main"].secret.reveal() == SECRET
    assert not stolen.exists()


def test_the_unseal_child_never_echoes_the_passphrase_in_an_error() -> None:
    """A passphrase that cannot be encoded (a lone surrogate from a non-UTF-8 environment variable)
    fails with the exception's name only: its message would quote a character of the passphrase."""
    from proxy.vault import unseal

    request = {"passphrase": "pass\udcffphrase", "wrapped_key": "x", "values": {},
               "kdf": {"salt": "A" * 22, "m": 65536, "t": 3, "p": 4}}
    answer = unseal._answer(request)
    assert answer == {"error": "format", "message": "cannot decrypt the config (UnicodeEncodeError)"}


def test_reload_keeps_restart_only_settings_and_names_them(doc: dict[str, Any]) -> None:
    """A reload applies what a running daemon can change, and keeps (naming each by its file key)
    what only a restart can: the model's RESTART_ONLY fields, nested sections included."""
    old = validate(doc, CONFIG_PATH)
    changed = {**doc, "listen": "127.0.0.1:9999", "socket_mode": "0600", "event_loop": "asyncio",
               "limits": {"rate_per_second": 5, "max_body_bytes": 4096}, "log_level": "debug"}
    new, kept = keep_restart_only(old, validate(changed, CONFIG_PATH))
    assert sorted(kept) == ["event_loop", "limits.max_body_bytes", "listen", "socket_mode"]
    assert (new.listen, new.socket_mode) == (old.listen, old.socket_mode)
    assert (new.features.event_loop, new.limits.max_body_bytes) == ("auto", old.limits.max_body_bytes)
    assert (new.limits.rate_per_second, new.log_level) == (5, "debug")
    assert keep_restart_only(old, old) == (old, [])


@pytest.mark.parametrize(("key", "value", "message"), [
    pytest.param("shutdown_grace_s", -1, "shutdown_grace_s: must be a number of seconds in 0..3600",
                 id="grace-neg"),
    pytest.param("shutdown_grace_s", "25", "shutdown_grace_s: must be a number", id="grace-text"),
    pytest.param("idempotency_ttl_s", 60, "idempotency_ttl_s: must be a number of seconds in 3600..2592000",
                 id="ttl-below-an-hour"),
    pytest.param("idempotency_ttl_s", True, "idempotency_ttl_s: must be a number", id="ttl-bool"),
])
def test_duration_keys_are_bounded(doc: dict[str, Any], key: str, value: Any, message: str) -> None:
    """The drain's grace and the idempotency records' lifetime: numbers of seconds within bounds."""
    doc[key] = value
    assert message in _error(doc)


def test_duration_keys_default_and_apply(doc: dict[str, Any]) -> None:
    """Defaults 25 s and a day; a value in bounds is taken; the grace needs a restart, the TTL not."""
    old = validate(doc, CONFIG_PATH)
    assert (old.shutdown_grace_s, old.idempotency_ttl_s) == (25, 86400)
    new, kept = keep_restart_only(old, validate({**doc, "shutdown_grace_s": 5, "idempotency_ttl_s": 7200},
                                                CONFIG_PATH))
    assert kept == ["shutdown_grace_s"] and (new.shutdown_grace_s, new.idempotency_ttl_s) == (25, 7200)


# --- redis (several daemons on one key) ---------------------------------------------------------------


@pytest.mark.parametrize(("url", "expected"), [
    ("redis://10.0.0.5:6379/0", {"db": 0, "tls": False, "sentinels": ()}),
    ("rediss://redis.internal:6380/3", {"db": 3, "tls": True, "sentinels": ()}),
    ("redis+sentinel://s1:26379,s2,[::1]:26380/mymaster/2",
     {"db": 2, "service": "mymaster", "sentinels": (("s1", 26379), ("s2", 26379), ("::1", 26380))}),
    ("redis+sentinel://s1/mymaster", {"db": 0, "service": "mymaster", "sentinels": (("s1", 26379),)}),
])
def test_redis_urls_accepted(doc: dict[str, Any], url: str, expected: dict[str, Any]) -> None:
    doc["redis"] = {"url": url}
    settings = validate(doc, CONFIG_PATH).redis
    assert settings is not None and settings.url == url
    for name, value in expected.items():
        assert getattr(settings, name) == value


@pytest.mark.parametrize(("url", "fragment"), [
    ("redis://:hunter2@10.0.0.5:6379/0", "password_file"),
    ("redis://user@10.0.0.5:6379/0", "password_file"),
    ("http://10.0.0.5:6379", "must start with redis://"),
    ("redis://10.0.0.5:6379/16", "0..15"),
    ("redis://10.0.0.5:6379/0?ssl_cert_reqs=none", "options"),
    ("redis+sentinel://s1:26379", "names its service"),
    ("redis+sentinel://s1:x/mymaster", "HOST:PORT"),
])
def test_redis_urls_refused(doc: dict[str, Any], url: str, fragment: str) -> None:
    doc["redis"] = {"url": url}
    message = _error(doc)
    assert message.startswith("redis.url:") and fragment in message
    assert "hunter2" not in message


def test_redis_url_from_the_command_line_keeps_the_password_file(doc: dict[str, Any]) -> None:
    doc["redis"] = {"url": "redis://a:6379/0", "password_file": "secrets/redis"}
    settings = validate(doc, CONFIG_PATH, {"redis_url": "redis://b:6379/1"}).redis
    assert settings is not None and settings.url == "redis://b:6379/1" and settings.db == 1
    assert settings.password_file == CONFIG_PATH.resolve().parent / "secrets" / "redis"


def test_redis_password_is_read_from_its_file(tmp_path: Path, doc: dict[str, Any]) -> None:
    from proxy.config.coordination import read_password

    (tmp_path / "pw").write_text("s3cret\n")
    doc["redis"] = {"url": "redis://a/0", "password_file": str(tmp_path / "pw"), "timeout_s": 0.2}
    settings = validate(doc, CONFIG_PATH).redis
    assert settings is not None and read_password(settings) == "s3cret" and settings.timeout_s == 0.2
    (tmp_path / "pw").write_text("")
    with pytest.raises(ConfigError, match="is empty"):
        read_password(settings)
    assert "s3cret" not in repr(settings)


def test_redis_ca_file_only_for_tls(doc: dict[str, Any]) -> None:
    doc["redis"] = {"url": "rediss://r:6380/0", "ca_file": "redis-ca.pem"}
    settings = validate(doc, CONFIG_PATH).redis
    assert settings is not None and settings.ca_file == CONFIG_PATH.resolve().parent / "redis-ca.pem"
    doc["redis"] = {"url": "redis://r:6379/0", "ca_file": "redis-ca.pem"}
    assert "redis.ca_file: only for TLS" in _error(doc)
