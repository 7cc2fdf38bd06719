"""Encryption at rest: data key wrapping under Argon2id and `enc:v1:` values bound to their path."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from proxy.vault import encryption as vault
from proxy.vault.encryption import FormatError, KdfParams, UnlockError, ValueAuthError

PASSPHRASE = b"correct horse battery staple"
SECRET = "S-" + "0123456789abcdef0123456789abcdef01234567"
PATH = "accounts.main.secret"
# Small but in-bounds Argon2id parameters: the defaults cost ~0.2 s per derivation.
FAST = KdfParams(salt=bytes(range(16)), m=8192, t=1, p=1)


@pytest.fixture
def data_key() -> bytes:
    return vault.new_data_key()


def _flip(token_text: str, index: int) -> str:
    raw = bytearray(vault.b64decode(token_text, "test"))
    raw[index] ^= 0x01
    return vault.b64encode(bytes(raw))


def test_value_round_trip(data_key: bytes) -> None:
    """A value encrypted for a path decrypts to the same text at that path."""
    token = vault.encrypt_value(data_key, PATH, SECRET)
    assert token.startswith("enc:v1:")
    assert SECRET not in token
    assert vault.decrypt_value(data_key, PATH, token) == SECRET


def test_value_round_trip_non_ascii(data_key: bytes) -> None:
    """Values are UTF-8: a non-ASCII value survives the round trip."""
    token = vault.encrypt_value(data_key, PATH, "S-p\u00e4ss\u20ac")
    assert vault.decrypt_value(data_key, PATH, token) == "S-p\u00e4ss\u20ac"


def test_value_token_is_unpadded_base64url(data_key: bytes) -> None:
    """The token after the prefix uses only the base64url alphabet and no padding (YAML-safe)."""
    token = vault.encrypt_value(data_key, PATH, SECRET)
    assert re.fullmatch(r"enc:v1:[A-Za-z0-9_-]+", token)


def test_each_encryption_uses_a_fresh_nonce(data_key: bytes) -> None:
    """Encrypting the same value twice gives different tokens (random GCM nonce)."""
    assert vault.encrypt_value(data_key, PATH, SECRET) != vault.encrypt_value(data_key, PATH, SECRET)


def test_value_moved_to_another_path_fails_naming_the_path(data_key: bytes) -> None:
    """A value copied under another account fails authentication, and the error names where."""
    token = vault.encrypt_value(data_key, PATH, SECRET)
    other = "accounts.other.secret"
    with pytest.raises(ValueAuthError, match=re.escape(other)) as info:
        vault.decrypt_value(data_key, other, token)
    assert info.value.path == other
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    "index",
    [
        pytest.param(0, id="gcm-nonce"),
        pytest.param(12, id="ciphertext"),
        pytest.param(-1, id="tag"),
    ],
)
def test_flipped_byte_fails_authentication(data_key: bytes, index: int) -> None:
    """Flipping any single byte of a value (nonce, ciphertext or tag) makes it fail to open."""
    token = vault.encrypt_value(data_key, PATH, SECRET)
    tampered = vault.VALUE_PREFIX + _flip(token[len(vault.VALUE_PREFIX) :], index)
    with pytest.raises(ValueAuthError, match=re.escape(PATH)):
        vault.decrypt_value(data_key, PATH, tampered)


def test_truncated_value_fails_authentication(data_key: bytes) -> None:
    """A value shorter than nonce plus tag is refused as unauthenticated, not crashed on."""
    with pytest.raises(ValueAuthError):
        vault.decrypt_value(data_key, PATH, vault.VALUE_PREFIX + vault.b64encode(b"\0" * 20))


def test_value_under_another_data_key_fails(data_key: bytes) -> None:
    """A value sealed under a different data key does not open."""
    token = vault.encrypt_value(vault.new_data_key(), PATH, SECRET)
    with pytest.raises(ValueAuthError):
        vault.decrypt_value(data_key, PATH, token)


def test_value_without_prefix_is_a_format_error(data_key: bytes) -> None:
    """A plaintext (unprefixed) value is a FormatError naming the path, never returned as-is."""
    with pytest.raises(FormatError, match=re.escape(PATH)):
        vault.decrypt_value(data_key, PATH, SECRET)


def test_data_key_round_trip(data_key: bytes) -> None:
    """A wrapped data key unwraps with the same passphrase and KDF parameters."""
    wrapped = vault.wrap_data_key(data_key, PASSPHRASE, FAST)
    assert vault.unwrap_data_key(wrapped, PASSPHRASE, FAST) == data_key


def test_wrong_passphrase_is_unlock_error(data_key: bytes) -> None:
    """A different passphrase cannot unwrap the data key."""
    wrapped = vault.wrap_data_key(data_key, PASSPHRASE, FAST)
    with pytest.raises(UnlockError):
        vault.unwrap_data_key(wrapped, PASSPHRASE + b"!", FAST)


@pytest.mark.parametrize(
    "changed",
    [
        pytest.param({"m": 16384}, id="memory"),
        pytest.param({"t": 2}, id="iterations"),
        pytest.param({"p": 2}, id="lanes"),
        pytest.param({"salt": bytes(range(1, 17))}, id="salt"),
    ],
)
def test_changed_kdf_params_are_unlock_error(data_key: bytes, changed: dict[str, object]) -> None:
    """Editing any KDF parameter in the header makes the data key fail to unwrap."""
    wrapped = vault.wrap_data_key(data_key, PASSPHRASE, FAST)
    with pytest.raises(UnlockError):
        vault.unwrap_data_key(wrapped, PASSPHRASE, replace(FAST, **changed))  # type: ignore[arg-type]


def test_flipped_wrapped_key_is_unlock_error(data_key: bytes) -> None:
    """A tampered wrapped key is refused with UnlockError."""
    wrapped = vault.wrap_data_key(data_key, PASSPHRASE, FAST)
    with pytest.raises(UnlockError):
        vault.unwrap_data_key(_flip(wrapped, 20), PASSPHRASE, FAST)


def test_default_kdf_params_follow_the_spec() -> None:
    """Defaults are Argon2id m=64 MiB, t=3, p=4 with a fresh random 16-byte salt."""
    first, second = KdfParams.fresh(), KdfParams.fresh()
    assert (first.m, first.t, first.p) == (64 * 1024, 3, 4)
    assert len(first.salt) == 16
    assert first.salt != second.salt
    first.check_bounds()


@pytest.mark.parametrize(
    "params",
    [
        pytest.param(KdfParams(salt=b"s" * 16, m=8 * 1024, t=1, p=1), id="all-minimum"),
        pytest.param(KdfParams(salt=b"s" * 64, m=1024 * 1024, t=16, p=16), id="all-maximum"),
    ],
)
def test_kdf_bounds_accept_the_edges(params: KdfParams) -> None:
    """The inclusive edges of every bound are accepted."""
    params.check_bounds()


@pytest.mark.parametrize(
    ("changed", "key"),
    [
        pytest.param({"m": 8 * 1024 - 1}, "encryption.kdf.m", id="m-too-small"),
        pytest.param({"m": 1024 * 1024 + 1}, "encryption.kdf.m", id="m-too-large"),
        pytest.param({"t": 0}, "encryption.kdf.t", id="t-zero"),
        pytest.param({"t": 17}, "encryption.kdf.t", id="t-too-large"),
        pytest.param({"p": 0}, "encryption.kdf.p", id="p-zero"),
        pytest.param({"p": 17}, "encryption.kdf.p", id="p-too-large"),
        pytest.param({"salt": b"s" * 15}, "encryption.kdf.salt", id="salt-too-short"),
        pytest.param({"salt": b"s" * 65}, "encryption.kdf.salt", id="salt-too-long"),
    ],
)
def test_kdf_bounds_enforced_naming_the_key(data_key: bytes, changed: dict[str, object], key: str) -> None:
    """Out-of-range KDF parameters are a FormatError naming the key, before any derivation."""
    params = replace(FAST, **changed)  # type: ignore[arg-type]
    with pytest.raises(FormatError, match=re.escape(key)):
        params.check_bounds()
    # derive_key checks too, so a crafted header cannot make start-up allocate gigabytes
    with pytest.raises(FormatError, match=re.escape(key)):
        vault.unwrap_data_key(vault.b64encode(b"\0" * 60), PASSPHRASE, params)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("a", id="one-char"),
        pytest.param("abcde", id="length-1-mod-4"),
        pytest.param("!!!!", id="only-junk"),
        pytest.param("AAAA*AAAA", id="junk-inside"),
        pytest.param("AAAA AAAA", id="space-inside"),
        pytest.param("AAAA\nAAAA", id="newline-inside"),
        pytest.param("\u00e9AAA", id="non-ascii"),
    ],
)
def test_malformed_base64_is_format_error(data_key: bytes, text: str) -> None:
    """Undecodable base64url in a value or the wrapped key is a FormatError naming where."""
    with pytest.raises(FormatError, match=re.escape(PATH)):
        vault.decrypt_value(data_key, PATH, vault.VALUE_PREFIX + text)
    with pytest.raises(FormatError, match=r"encryption\.wrapped_key"):
        vault.unwrap_data_key(text, PASSPHRASE, FAST)


def test_b64_round_trip() -> None:
    """b64encode/b64decode round-trip every length, padding stripped and restored."""
    for size in range(0, 40):
        data = bytes(range(size))
        text = vault.b64encode(data)
        assert "=" not in text
        assert vault.b64decode(text, "x") == data
