"""Reading EXMO's answers: 40009, rate limits, and what is not an API answer (exmo/, upstream/)."""

from __future__ import annotations

import pytest

from proxy.exmo.answers import nonce_rejection, rate_limit_pause
from proxy.upstream.client import UpstreamError, UpstreamResponse, require_api_answer


def answer(body: bytes, status: int = 200, content_type: str = "application/json") -> UpstreamResponse:
    return UpstreamResponse(status, body, content_type)


@pytest.mark.parametrize(
    ("resp", "pause"),
    [
        pytest.param(answer(b'{"result":false,"error":"Error 40034: Access is denied, '
                            b'rate limit is exceeded"}'), 60.0, id="40034"),
        pytest.param(answer(b'{"result":false,"error":"API rate limit exceeded for 1.2.3.4. '
                            b'Retry after 42 sec.","history":[]}'), 42.0, id="retry-after"),
        pytest.param(answer(b'{"result":false,"error":"API rate limit exceeded for x. '
                            b'Retry after 99999 sec."}'), 300.0, id="capped"),
        pytest.param(answer(b"Too Many Requests", 429, "text/plain"), 60.0, id="http-429"),
        pytest.param(answer(b'{"balances":{"BTC":"1"}}'), None, id="ordinary"),
        pytest.param(answer(b'{"pair":"rate limit exceeded"}'), None, id="words-outside-error"),
    ],
)
def test_rate_limit_pause(resp: UpstreamResponse, pause: float | None) -> None:
    """Both of EXMO's rate-limit texts (and an HTTP 429) pause; the pause is capped at 300 s."""
    assert rate_limit_pause(resp) == pause


def test_nonce_rejection_reads_the_number() -> None:
    """40009 without 'Error ' prefix, the highest nonce in escaped quotes (exmo-api.md §3)."""
    body = (b'{"result":false,"error":"40009: The nonce parameter is less or equal than what was used'
            b' before \\"1520608121756\\""}')
    assert nonce_rejection(answer(body)) == 1520608121756
    assert nonce_rejection(answer(b'{"result":true}')) is None


@pytest.mark.parametrize(("resp", "passes"), [
    pytest.param(answer(b'{"result":true}'), True, id="object"),
    pytest.param(answer(b"[]"), True, id="array"),
    pytest.param(answer(b"<html>", 200, "text/html"), False, id="html-200"),
    pytest.param(answer(b"", 302, ""), False, id="redirect"),
    pytest.param(answer(b'{"x":1}', 503), False, id="json-5xx"),
    pytest.param(answer(b'{"result":true}\r\n'), True, id="trailing-whitespace"),
    pytest.param(answer(b'{"result":true,"balances":{"BTC":"0.0'), False, id="truncated"),
    pytest.param(answer(b'{"result":true}<html>'), False, id="garbage-after-object"),
    pytest.param(answer(b'{not json at all'), False, id="brace-then-garbage"),
    pytest.param(answer(b'"just a string"'), False, id="json-string"),
])
def test_require_api_answer(resp: UpstreamResponse, passes: bool) -> None:
    """Only EXMO's JSON (an object or an array) passes; anything else, JSON cut short included, is a 502
    whose outcome is unknown for a signed call."""
    if passes:
        assert require_api_answer(resp, "https://api.exmo.com", private=True) is resp
    else:
        with pytest.raises(UpstreamError, match="outcome unknown") as info:
            require_api_answer(resp, "https://api.exmo.com", private=True)
        assert info.value.status == 502 and info.value.sent


def test_a_damaged_json_answer_says_so() -> None:
    """The 502 for a 2xx that starts like JSON but does not parse names the problem."""
    with pytest.raises(UpstreamError, match="not valid JSON") as info:
        require_api_answer(answer(b'{"result":tr'), "https://api.exmo.com", private=False)
    assert info.value.slug == "upstream_invalid" and "retry the request" in str(info.value)


def test_a_signed_answer_is_parsed_once() -> None:
    """The check keeps what it parsed: the audit reads EXMO's result from the same object."""
    resp = answer(b'{"result":false,"error":"Error 50052: Insufficient funds"}')
    assert require_api_answer(resp, "https://api.exmo.com", private=True).doc is resp.doc
    assert resp.doc == {"result": False, "error": "Error 50052: Insufficient funds"}
