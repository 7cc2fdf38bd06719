"""Reading EXMO's answers: 40009, rate limits, and what is not an API answer (proxy/answers.py)."""

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
])
def test_require_api_answer(resp: UpstreamResponse, passes: bool) -> None:
    """Only EXMO's JSON passes; anything else is a 502 whose outcome is unknown for a signed call."""
    if passes:
        assert require_api_answer(resp, "https://api.exmo.com", private=True) is resp
    else:
        with pytest.raises(UpstreamError, match="outcome unknown") as info:
            require_api_answer(resp, "https://api.exmo.com", private=True)
        assert info.value.status == 502 and info.value.sent
