"""Known-answer tests for EXMO signing (exmo-api.md §1.3, §6.1): body encoding, Sign, WS login."""

from __future__ import annotations

import hashlib
import hmac
import pickle
import re
from urllib.parse import urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.exmo.signing import Signer, encode_body, sign, sign_ws_login

# ccxt's offline-test dummy secret; the vectors below are copied from exmo-api.md §1.3.
SECRET = b"secretsecret"
VECTOR_BALANCE_BODY = b"nonce=1700154924505"
VECTOR_BALANCE_SIGN = (
    "3f0e7f570cea0439ec5d13a3e8aa38f72ca1e9b304e1bf896093127b1ee7c1d7"
    "634951fbb4f72dcb3a1986973e7452105c21701d71027faa5e6a3fe4de53f29a"
)
VECTOR_ORDER_BODY = b"nonce=1701427482963&pair=LTC_USDT&quantity=0.1&price=50&type=buy"
VECTOR_ORDER_SIGN = (
    "a6257bea5de8e9d3e12f284afad1dd3da74c4b426fdbeeb30066638130c5a4bb"
    "8c87ac8a47db3e5dbf1050a9742cafc2f5ab4dd8b026cde9b5b0d9f5c473da22"
)
VECTOR_WS_SIGN = "K52wD6wx0/xmKhG223QhQaafaIHQ4cYes7z5FzXyE6Jo2BJzvyWORrtOH09bVsSlb9Miq53E/msbciZoiqRzMQ=="

FAKE_SECRET = "S-" + "0123456789abcdef0123456789abcdef01234567"
FAKE_KEY = "K-" + "89abcdef0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(VECTOR_BALANCE_BODY, VECTOR_BALANCE_SIGN, id="user_info-nonce-only"),
        pytest.param(VECTOR_ORDER_BODY, VECTOR_ORDER_SIGN, id="order_create-params"),
    ],
)
def test_sign_matches_known_answer_vectors(body: bytes, expected: str) -> None:
    """sign() reproduces the fact sheet's HMAC-SHA512 hex vectors byte for byte."""
    assert sign(SECRET, body) == expected


def test_ws_login_signature_matches_known_answer_vector() -> None:
    """sign_ws_login() is base64(HMAC-SHA512(secret, api_key + nonce)) as in the fact sheet."""
    assert sign_ws_login(SECRET, "key", 1654215729887) == VECTOR_WS_SIGN


def test_encode_body_reproduces_the_order_vector_from_params() -> None:
    """encode_body() turns params plus a nonce into exactly the body the order vector signs."""
    params = [("pair", "LTC_USDT"), ("quantity", "0.1"), ("price", "50"), ("type", "buy")]
    body = encode_body(params, 1701427482963)
    assert body == VECTOR_ORDER_BODY
    assert sign(SECRET, body) == VECTOR_ORDER_SIGN


def test_encode_body_with_no_params_is_the_balance_vector() -> None:
    """With no params the body is just the nonce, as in ccxt's fetchBalance fixture."""
    assert encode_body([], 1700154924505) == VECTOR_BALANCE_BODY


def test_encode_body_puts_nonce_first_and_keeps_param_order() -> None:
    """The nonce leads the body; the client's parameter order is kept, not sorted."""
    body = encode_body([("z", "1"), ("a", "2"), ("m", "3")], 42)
    assert body == b"nonce=42&z=1&a=2&m=3"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        pytest.param([("note", "a b")], b"nonce=1&note=a+b", id="space-as-plus"),
        pytest.param([("address", "a&b=c")], b"nonce=1&address=a%26b%3Dc", id="reserved-chars-escaped"),
        pytest.param([("pair", "BTC/USD")], b"nonce=1&pair=BTC%2FUSD", id="slash-escaped"),
        pytest.param([("memo", "\u00e9")], b"nonce=1&memo=%C3%A9", id="utf8-percent-encoded"),
        pytest.param([("empty", "")], b"nonce=1&empty=", id="blank-value-kept"),
    ],
)
def test_encode_body_percent_encodes_values(params: list[tuple[str, str]], expected: bytes) -> None:
    """Values are form-encoded so the signed bytes are unambiguous ASCII."""
    assert encode_body(params, 1) == expected


def test_sign_is_128_lower_case_hex() -> None:
    """Sign is 128 lower-case hex characters (upper case is not confirmed to work, §1.3)."""
    signature = sign(FAKE_SECRET.encode(), encode_body([("pair", "BTC_USDT")], 1700000000000))
    assert re.fullmatch(r"[0-9a-f]{128}", signature)


def test_sign_keys_with_the_whole_secret_including_prefix() -> None:
    """The HMAC key is the full secret string, S- prefix included, not the hex part alone."""
    body = b"nonce=1"
    expected = hmac.new(FAKE_SECRET.encode(), body, hashlib.sha512).hexdigest()
    assert sign(FAKE_SECRET.encode(), body) == expected
    assert sign(FAKE_SECRET[2:].encode(), body) != expected


def test_sign_depends_on_every_body_byte() -> None:
    """Changing one byte of the body (here the nonce) changes the signature."""
    assert sign(SECRET, b"nonce=1700154924506") != VECTOR_BALANCE_SIGN


def test_ws_login_signature_depends_on_nonce_and_key() -> None:
    """The WS login signature changes with the nonce and with the API key."""
    base = sign_ws_login(SECRET, FAKE_KEY, 1654215729887)
    assert sign_ws_login(SECRET, FAKE_KEY, 1654215729888) != base
    assert sign_ws_login(SECRET, FAKE_KEY[:-1] + "0", 1654215729887) != base


_FORM_CHARS = st.text(alphabet=st.sampled_from("aZ09_.~-=&+% é\n/\U0001f600"), max_size=12)


@settings(max_examples=2000, deadline=None)
@given(params=st.lists(st.tuples(_FORM_CHARS, _FORM_CHARS), max_size=6), nonce=st.integers(0, 2**63 - 1))
def test_encode_body_is_byte_for_byte_urlencode(params: list[tuple[str, str]], nonce: int) -> None:
    """The fast path for plain parameters may never differ from what urlencode writes."""
    assert encode_body(params, nonce) == urlencode([("nonce", str(nonce)), *params]).encode("ascii")


def test_signer_signs_like_sign_and_hides_its_key() -> None:
    signer = Signer(SECRET)
    assert signer.sign(VECTOR_ORDER_BODY) == sign(SECRET, VECTOR_ORDER_BODY)
    assert signer.sign(VECTOR_BALANCE_BODY) == VECTOR_BALANCE_SIGN  # no state carried between calls
    assert "secret" not in repr(signer)
    with pytest.raises(TypeError):
        pickle.dumps(signer)
