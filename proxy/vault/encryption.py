"""Encryption at rest: the data key, its Argon2id wrapping, and `enc:v1:` values (SPEC §4).

Layout: a random 256-bit data key encrypts every secret value with AES-256-GCM, the value's dotted
YAML path as associated data (so a value copied to another path fails to open). The data key is
itself sealed with AES-256-GCM under a key derived from the passphrase with Argon2id; the KDF
parameters are bound into that seal as associated data and bounded when read, so a crafted config
cannot make start-up allocate gigabytes or spin for minutes.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# `cryptography` is imported where it is used, not here: the daemon imports this module for the
# config format but decrypts in a child process (unseal.py), so its ~7 MiB of libraries stay out.

VALUE_PREFIX = "enc:v1:"
FORMAT_VERSION = 1
_NONCE_BYTES = 12
_KEY_BYTES = 32

# Accepted ranges when a config is read (memory in KiB, as Argon2 counts it).
KDF_BOUNDS = {"m": (8 * 1024, 1024 * 1024), "t": (1, 16), "p": (1, 16)}
SALT_BOUNDS = (16, 64)


class UnlockError(Exception):
    """The passphrase does not open the data key (wrong passphrase or tampered header)."""


class ValueAuthError(Exception):
    """An `enc:v1:` value failed authentication: tampered, or moved from another path."""

    def __init__(self, path: str) -> None:
        super().__init__(f"{path}: encrypted value failed authentication (tampered or moved)")
        self.path = path


class FormatError(ValueError):
    """The encryption header or a value is malformed; the message names the key."""


@dataclass(frozen=True)
class KdfParams:
    """Argon2id parameters; defaults follow the issue: m=64 MiB, t=3, p=4."""

    salt: bytes
    m: int = 64 * 1024
    t: int = 3
    p: int = 4

    def check_bounds(self) -> None:
        for name, (low, high) in KDF_BOUNDS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise FormatError(f"encryption.kdf.{name}: {value} is outside {low}..{high}")
        if not SALT_BOUNDS[0] <= len(self.salt) <= SALT_BOUNDS[1]:
            raise FormatError(f"encryption.kdf.salt: must be {SALT_BOUNDS[0]}..{SALT_BOUNDS[1]} bytes")

    def associated_data(self) -> bytes:
        return f"exmo-proxy/v{FORMAT_VERSION}/argon2id/m={self.m}/t={self.t}/p={self.p}/".encode() + (
            self.salt
        )

    @classmethod
    def fresh(cls) -> KdfParams:
        return cls(salt=os.urandom(16))


def b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode(text: str, where: str) -> bytes:
    try:
        padded = (text + "=" * (-len(text) % 4)).encode("ascii")
        return base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise FormatError(f"{where}: not valid base64url") from None


def _aesgcm(key: bytes) -> AESGCM:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(key)


def derive_key(passphrase: bytes, kdf: KdfParams) -> bytes:
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    kdf.check_bounds()
    argon = Argon2id(salt=kdf.salt, length=_KEY_BYTES, iterations=kdf.t, lanes=kdf.p, memory_cost=kdf.m)
    return argon.derive(passphrase)


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> str:
    nonce = os.urandom(_NONCE_BYTES)
    return b64encode(nonce + _aesgcm(key).encrypt(nonce, plaintext, aad))


class _BadTag(Exception):
    pass


def _open(key: bytes, token: bytes, aad: bytes) -> bytes:
    """Decrypt and authenticate; _BadTag if the token is short, altered or for another key/aad."""
    from cryptography.exceptions import InvalidTag

    if len(token) < _NONCE_BYTES + 16:
        raise _BadTag
    try:
        return _aesgcm(key).decrypt(token[:_NONCE_BYTES], token[_NONCE_BYTES:], aad)
    except InvalidTag:
        raise _BadTag from None


def new_data_key() -> bytes:
    return os.urandom(_KEY_BYTES)  # what AESGCM.generate_key(256) returns


def wrap_data_key(data_key: bytes, passphrase: bytes, kdf: KdfParams) -> str:
    return _seal(derive_key(passphrase, kdf), data_key, kdf.associated_data())


def unwrap_data_key(wrapped: str, passphrase: bytes, kdf: KdfParams) -> bytes:
    token = b64decode(wrapped, "encryption.wrapped_key")
    try:
        return _open(derive_key(passphrase, kdf), token, kdf.associated_data())
    except _BadTag:
        raise UnlockError(
            "cannot unlock the config: wrong passphrase, or the encryption header was altered"
        ) from None


def encrypt_value(data_key: bytes, path: str, plaintext: str) -> str:
    return VALUE_PREFIX + _seal(data_key, plaintext.encode("utf-8"), path.encode("utf-8"))


def decrypt_value(data_key: bytes, path: str, value: str) -> str:
    if not value.startswith(VALUE_PREFIX):
        raise FormatError(f"{path}: not an {VALUE_PREFIX} value")
    token = b64decode(value[len(VALUE_PREFIX) :], path)
    try:
        return _open(data_key, token, path.encode("utf-8")).decode("utf-8")
    except (_BadTag, UnicodeDecodeError):
        raise ValueAuthError(path) from None
