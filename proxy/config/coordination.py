"""`redis:` — several daemons on one key share their state through Redis (SPEC §10).

    redis:
      url: redis://10.0.0.5:6379/0                # or rediss:// (TLS, certificate verified)
      # url: redis+sentinel://s1:26379,s2,s3/mymaster/0   # Sentinel: its members, the service, the db
      password_file: /run/secrets/redis-password  # optional: a file holding the password, or
      # password: "enc:v1:..."                    # sealed in this file by `exmo-proxy redis password`
      ca_file: /etc/exmo-proxy/redis-ca.pem       # rediss: a private CA (default: the system's)
      timeout_s: 0.5                              # every Redis call

A password in the URL is refused (it would sit in the file, and `run --redis-url` would put it in argv).
It is read from `password_file` (a Docker or Kubernetes secret, a systemd credential) at start, or
sealed in this file like an API secret (`password: enc:v1:...`, under the config's data key, decrypted
with the accounts' secrets); never plaintext. A change of `redis` takes a restart. Without `redis`,
everything stays local as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from proxy.config.checks import ConfigError, check_keys
from proxy.vault.encryption import VALUE_PREFIX
from proxy.vault.secret import Secret

SCHEMES = ("redis", "rediss", "redis+sentinel", "rediss+sentinel")
SENTINEL_PORT = 26379
SEALED_AT = "redis.password"  # the sealed password's path (its associated data)


@dataclass(frozen=True)
class RedisSettings:
    url: str  # without a password
    password_file: Path | None = None
    timeout_s: float = 0.5
    sentinels: tuple[tuple[str, int], ...] = field(default=())  # a Sentinel URL's members
    service: str = ""  # a Sentinel URL's service (its master's name)
    db: int = 0
    tls: bool = False
    ca_file: Path | None = None  # rediss: the CA that signed the server's certificate (else the system's)
    sealed_password: str | None = None  # `password:` as in the file (enc:v1:)
    password: Secret | None = field(default=None, compare=False)  # that, decrypted (config/load.py)

    @property
    def where(self) -> str:
        """Where Redis is, for messages and /readyz (no password: there is none in the URL)."""
        return self.url


def redis(raw: Any, base: Path) -> RedisSettings | None:
    """The `redis:` section, or None when the config names no Redis."""
    if raw is None:
        return None
    values = check_keys(raw, {"url", "password", "password_file", "timeout_s", "ca_file"}, "redis")
    url = values.get("url")
    if not isinstance(url, str) or not url:
        raise ConfigError("redis.url: must be a URL like redis://HOST:6379/0 (or rediss://, redis+sentinel://)")
    timeout = values.get("timeout_s", 0.5)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.01 <= timeout <= 30:
        raise ConfigError("redis.timeout_s: must be a number of seconds in 0.01..30")
    password_file = values.get("password_file")
    if password_file is not None and (not isinstance(password_file, str) or not password_file):
        raise ConfigError("redis.password_file: must be a path")
    sealed = values.get("password")
    if sealed is not None and (not isinstance(sealed, str) or not sealed.startswith(VALUE_PREFIX)):
        raise ConfigError("redis.password: must be sealed (enc:v1:...); store it with `exmo-proxy redis"
                          " password`, or name a file holding it in redis.password_file")
    if sealed is not None and password_file is not None:
        raise ConfigError("redis: password and password_file are both set; keep one")
    settings = parse_url(url)
    ca_file = values.get("ca_file")
    if ca_file is not None and (not isinstance(ca_file, str) or not ca_file):
        raise ConfigError("redis.ca_file: must be a path")
    if ca_file is not None and not settings.tls:
        raise ConfigError("redis.ca_file: only for TLS (rediss:// or rediss+sentinel://)")
    return RedisSettings(
        url=settings.url, password_file=base / password_file if password_file else None,
        timeout_s=float(timeout), sentinels=settings.sentinels, service=settings.service, db=settings.db,
        tls=settings.tls, ca_file=base / ca_file if ca_file else None, sealed_password=sealed)


def parse_url(url: str) -> RedisSettings:
    """Check a Redis URL: a known scheme, host(s), an optional db, no password."""
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in SCHEMES:
        schemes = ", ".join(s + "://" for s in SCHEMES)
        raise ConfigError(f"redis.url: {_shown(parts)!r} must start with {schemes}")
    if parts.password is not None or "@" in parts.netloc:
        raise ConfigError("redis.url: holds a user or password; put the password in a file and name it in"
                          " redis.password_file, so it is not in the config, argv or the environment")
    if parts.query or parts.fragment:
        raise ConfigError("redis.url: options after ? or # are not taken; use redis.timeout_s")
    tls = parts.scheme.startswith("rediss")
    if parts.scheme.endswith("+sentinel"):
        members = tuple(_member(m) for m in parts.netloc.split(","))
        path = [p for p in parts.path.split("/") if p]
        if not path or len(path) > 2:
            raise ConfigError("redis.url: a Sentinel URL names its service: redis+sentinel://HOST:26379,"
                              "HOST2/SERVICE[/DB]")
        return RedisSettings(url=url, sentinels=members, service=path[0],
                             db=_db(path[1] if len(path) == 2 else "0"), tls=tls)
    if not parts.hostname:
        raise ConfigError(f"redis.url: {url!r} names no host")
    try:
        parts.port  # noqa: B018 - urlsplit checks the port only when asked
    except ValueError:
        raise ConfigError(f"redis.url: {url!r} has an invalid port") from None
    return RedisSettings(url=url, db=_db(parts.path.strip("/") or "0"), tls=tls)


def _member(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = text, str(SENTINEL_PORT)
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"redis.url: Sentinel member {text!r} is not HOST or HOST:PORT")
    return host.removeprefix("[").removesuffix("]"), int(port)


def _db(text: str) -> int:
    if not text.isdigit() or int(text) > 15:
        raise ConfigError(f"redis.url: database {text!r} must be a number 0..15")
    return int(text)


def _shown(parts: SplitResult) -> str:
    return f"{parts.scheme}://{parts.hostname or ''}"


def read_password(settings: RedisSettings) -> str | None:
    """The password: decrypted from the file, or from `password_file` (a trailing newline stripped);
    None without one."""
    if settings.password is not None:
        return settings.password.reveal()
    if settings.sealed_password is not None:
        raise ConfigError("redis.password: not decrypted (this command does not unlock the config)")
    if settings.password_file is None:
        return None
    try:
        text = settings.password_file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"redis.password_file: cannot read {settings.password_file}:"
                          f" {exc.strerror}") from None
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise ConfigError(f"redis.password_file: {settings.password_file} is empty")
    return password
