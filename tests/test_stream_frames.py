"""The frames the daemon reads or writes itself (proxy/streams/frames.py): pure functions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest

from proxy.streams import frames

KEY = "K-" + "0123456789abcdef" * 2 + "01234567"
SECRET = "S-" + "89abcdef01234567" * 2 + "89abcdef"


def test_the_daemon_login_is_signed_like_exmo_s_examples() -> None:
    """sign = base64(HMAC-SHA512(secret, api_key + nonce)), nonce a JSON number (exmo-api.md §6.1)."""
    frame = json.loads(frames.login(KEY, SECRET.encode(), 1700000000123))
    expected = base64.b64encode(hmac.new(SECRET.encode(), f"{KEY}1700000000123".encode(),
                                         hashlib.sha512).digest()).decode()
    assert frame == {"id": frames.LOGIN_ID, "method": "login", "api_key": KEY, "sign": expected,
                     "nonce": 1700000000123}


@pytest.mark.parametrize(("text", "found"), [
    ('{"id":3,"method":"login","api_key":"x","sign":"y","nonce":1}', (True, 3)),
    ('{"method":"login"}', (True, None)),
    ('{"id":4,"method":"subscribe","topics":["spot/ticker:BTC_USD"]}', (False, None)),
    ('{"id":5,"method":"subscribe","topics":["login"]}', (False, None)),  # names it, is not one
    ('not json "login"', (False, None)),
    ('["login"]', (False, None)),
])
def test_a_client_login_is_recognised_and_nothing_else(text: str, found: tuple[bool, object]) -> None:
    assert frames.client_login(text) == found


def test_logged_in_carries_the_client_s_id() -> None:
    assert json.loads(frames.logged_in(42, 1700000000000)) == {"ts": 1700000000000, "event": "logged_in",
                                                                "id": 42}
    assert "id" not in json.loads(frames.logged_in(None, 1))


@pytest.mark.parametrize(("text", "answer"), [
    ('{"ts":1,"event":"logged_in","id":1}', frames.LoginAnswer(True)),
    ('{"ts":1,"event":"logged_in"}', frames.LoginAnswer(True)),
    ('{"ts":1,"event":"error","id":1,"code":40017,"message":"Wrong api key"}',
     frames.LoginAnswer(False, 40017, "Wrong api key")),
    ('{"ts":1,"event":"error","id":1,"code":"x","error":"text under error"}',
     frames.LoginAnswer(False, None, "text under error")),
    ('{"ts":1,"event":"error","code":40005,"message":"no id"}', frames.LoginAnswer(False, 40005, "no id")),
    ('{"ts":1,"event":"error","id":7,"code":201008,"message":"not ours"}', None),
    ('{"ts":1,"event":"info","code":1,"message":"connection established"}', None),
    ("garbage", None),
])
def test_exmo_s_answer_to_the_daemon_login(text: str, answer: frames.LoginAnswer | None) -> None:
    assert frames.login_answer(text) == answer


def test_maintenance_notice() -> None:
    assert frames.is_maintenance('{"ts":1,"event":"info","code":2,"message":"maintenance in progress"}')
    assert not frames.is_maintenance('{"ts":1,"event":"info","code":1,"message":"connection established"}')
    assert not frames.is_maintenance('{"event":"update","data":{"info":2}}')


def test_a_close_reason_fits_a_close_frame_on_a_character_boundary() -> None:
    assert frames.reason("short") == "short"
    long = "é" * 100  # 200 bytes
    cut = frames.reason(long)
    assert len(cut.encode()) <= frames.REASON_BYTES and cut == "é" * 61
