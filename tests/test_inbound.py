"""Client parameters: form, flat JSON and query string become one ordered list; ambiguity is refused."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given, settings
from hypothesis import strategies as st
from pytest_aiohttp import AiohttpClient

from proxy.web.call import Call
from proxy.web.inbound import MAX_FIELDS, BadRequest, merge, parse_body, parse_form, parse_json, read_params

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
Pairs = list[tuple[str, str]]


@pytest.mark.parametrize(
    ("content_type", "raw", "expected"),
    [
        pytest.param(FORM, b"pair=BTC_USDT&quantity=0.1", [("pair", "BTC_USDT"), ("quantity", "0.1")],
                     id="form"),
        pytest.param(FORM, b"memo=a+b%26c%3Dd", [("memo", "a b&c=d")], id="form-decoding"),
        pytest.param(FORM, b"a=&b", [("a", ""), ("b", "")], id="form-blank-values-kept"),
        pytest.param(FORM, b"z=1&a=2&m=3", [("z", "1"), ("a", "2"), ("m", "3")], id="form-order-kept"),
        pytest.param(FORM, b"a=1\r\n", [("a", "1")], id="form-trailing-newline"),
        pytest.param(FORM, b"memo=%C3%A9", [("memo", "\u00e9")], id="form-utf8-percent"),
        pytest.param("", b"a=1&b=2", [("a", "1"), ("b", "2")], id="form-without-content-type"),
        pytest.param("text/plain", b"a=1", [("a", "1")], id="form-as-text-plain"),
        pytest.param(JSON, b'{"pair": "BTC_USDT", "type": "buy"}', [("pair", "BTC_USDT"), ("type", "buy")],
                     id="json-strings"),
        pytest.param(JSON, b'{"quantity": 0.1, "price": 1e-8}', [("quantity", "0.1"), ("price", "1e-8")],
                     id="json-numbers-keep-text"),
        pytest.param(JSON, b'{"a": 0.10, "b": 1E+2, "c": -0, "d": 50}',
                     [("a", "0.10"), ("b", "1E+2"), ("c", "-0"), ("d", "50")],
                     id="json-number-spelling-kept"),
        pytest.param(JSON, b'{"n": 123456789012345678901234567890}',
                     [("n", "123456789012345678901234567890")],
                     id="json-big-int-exact"),
        pytest.param(JSON, b'{"q": 0.1000000000000000055511151231257827}',
                     [("q", "0.1000000000000000055511151231257827")], id="json-long-decimal-exact"),
        pytest.param(JSON, '{"memo": "\u00e9"}'.encode(), [("memo", "\u00e9")], id="json-utf8"),
        pytest.param("application/vnd.api+json", b'{"a": "b"}', [("a", "b")], id="json-plus-suffix"),
        pytest.param("", b'  {"a": "b"}', [("a", "b")], id="json-sniffed-no-content-type"),
        pytest.param("text/plain", b'{"a": 1}', [("a", "1")], id="json-sniffed-text-plain"),
        pytest.param(JSON, b"{}", [], id="json-empty-object"),
        pytest.param(FORM, b"", [], id="empty-form"),
        pytest.param(JSON, b"", [], id="empty-json"),
        pytest.param("", b" \r\n\t", [], id="whitespace-only"),
    ],
)
def test_parse_body(content_type: str, raw: bytes, expected: Pairs) -> None:
    """Form and flat JSON bodies become ordered (name, value) string pairs."""
    assert parse_body(content_type, raw) == expected


@pytest.mark.parametrize(
    ("content_type", "raw", "slug"),
    [
        pytest.param(JSON, b'{"a": {"b": "c"}}', "bad_json", id="nested-object"),
        pytest.param(JSON, b'{"a": ["b"]}', "bad_json", id="array-value"),
        pytest.param(JSON, b'{"a": true}', "bad_json", id="bool-true"),
        pytest.param(JSON, b'{"a": false}', "bad_json", id="bool-false"),
        pytest.param(JSON, b'{"a": null}', "bad_json", id="null"),
        pytest.param(JSON, b'{"a": NaN}', "bad_json", id="nan"),
        pytest.param(JSON, b'{"a": -Infinity}', "bad_json", id="infinity"),
        pytest.param(JSON, b'["a", "b"]', "bad_json", id="top-level-array"),
        pytest.param(JSON, b'"a=1"', "bad_json", id="top-level-string"),
        pytest.param(JSON, b"a=1", "bad_json", id="form-sent-as-json"),
        pytest.param(JSON, b'{"a": "b"', "bad_json", id="truncated"),
        pytest.param("", b'{"a": 1, }', "bad_json", id="sniffed-invalid"),
        pytest.param(FORM, b"a=\xff\xfe", "bad_encoding", id="form-raw-invalid-utf8"),
        pytest.param(FORM, b"a=%ff%fe", "bad_encoding", id="form-percent-invalid-utf8"),
        pytest.param(FORM, b"%c3=1", "bad_encoding", id="form-name-truncated-utf8"),
        pytest.param("multipart/form-data", b"--x\r\n", "unsupported_body", id="multipart"),
        pytest.param(FORM, "&".join(f"f{i}=1" for i in range(MAX_FIELDS + 1)).encode(), "too_many_fields",
                     id="form-too-many-fields"),
        pytest.param(JSON, json.dumps({f"f{i}": "1" for i in range(MAX_FIELDS + 1)}).encode(),
                     "too_many_fields", id="json-too-many-fields"),
    ],
)
def test_parse_body_refuses(content_type: str, raw: bytes, slug: str) -> None:
    """Input that is ambiguous or undecodable is refused with a machine-readable slug."""
    with pytest.raises(BadRequest) as info:
        parse_body(content_type, raw)
    assert info.value.slug == slug


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        pytest.param(FORM, "&".join(f"f{i}=1" for i in range(MAX_FIELDS)).encode(), id="form"),
        pytest.param(JSON, json.dumps({f"f{i}": "1" for i in range(MAX_FIELDS)}).encode(), id="json"),
    ],
)
def test_exactly_max_fields_is_accepted(content_type: str, raw: bytes) -> None:
    """The field limit is inclusive: MAX_FIELDS fields are fine."""
    assert len(parse_body(content_type, raw)) == MAX_FIELDS


def test_parse_json_error_message_names_the_field() -> None:
    """A refused JSON value names the offending field so the client can fix it."""
    with pytest.raises(BadRequest, match="'quantity'"):
        parse_json(b'{"pair": "BTC_USDT", "quantity": [1]}')


def test_parse_form_names_where_it_failed() -> None:
    """parse_form errors say whether the query string or the body was bad."""
    with pytest.raises(BadRequest, match="query string"):
        parse_form("a=%ff", "query string")


def test_duplicate_json_key_refused() -> None:
    """`{"quantity": "1", "quantity": "100"}` is refused, not silently read as 100."""
    with pytest.raises(BadRequest) as info:
        parse_json(b'{"quantity": "1", "quantity": "100"}')
    assert info.value.slug == "duplicate_parameter"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b'{"memo": "\\ud800"}', id="in-value"),
        pytest.param(b'{"\\udfff": "x"}', id="in-name"),
    ],
)
def test_lone_surrogate_in_json_refused(raw: bytes) -> None:
    """JSON escapes that are not valid Unicode text are a 400, not a crash when the body is encoded."""
    with pytest.raises(BadRequest):
        parse_json(raw)


@pytest.mark.parametrize(
    ("sources", "expected"),
    [
        pytest.param(([("pair", "BTC_USDT")], [("quantity", "1")]), (("pair", "BTC_USDT"), ("quantity", "1")),
                     id="query-then-body"),
        pytest.param(([("nonce", "1"), ("a", "1")], [("nonce", "2"), ("b", "2")]), (("a", "1"), ("b", "2")),
                     id="client-nonce-dropped-everywhere"),
        pytest.param(([], []), (), id="nothing"),
        pytest.param(([("a", "")],), (("a", ""),), id="blank-value-kept"),
    ],
)
def test_merge(sources: tuple[Pairs, ...], expected: tuple[tuple[str, str], ...]) -> None:
    """Query and body parameters merge in order; a client nonce is dropped (the daemon owns it)."""
    assert merge(*sources) == expected


@pytest.mark.parametrize(
    ("sources", "slug"),
    [
        pytest.param(([("pair", "A"), ("pair", "B")],), "duplicate_parameter", id="twice-in-one-source"),
        pytest.param(([("pair", "A")], [("pair", "A")]), "duplicate_parameter", id="query-and-body"),
        pytest.param(([("", "x")],), "bad_parameter", id="empty-name"),
    ],
)
def test_merge_refuses(sources: tuple[Pairs, ...], slug: str) -> None:
    """A repeated parameter name (even with the same value) or an empty name is refused."""
    with pytest.raises(BadRequest) as info:
        merge(*sources)
    assert info.value.slug == slug


def test_merge_error_names_the_parameter() -> None:
    """The duplicate error names the parameter."""
    with pytest.raises(BadRequest, match="'quantity'"):
        merge([("quantity", "1")], [("quantity", "2")])


async def _echo(request: web.Request) -> web.Response:
    call = Call.of(request, await request.read())  # the facts as the API reads them
    try:
        params = read_params(call.query, call.content_type, call.body)
    except BadRequest as exc:
        return web.json_response({"slug": exc.slug}, status=400)
    return web.json_response([list(pair) for pair in params])


Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def client(aiohttp_client: AiohttpClient) -> Client:
    app = web.Application()
    app.router.add_route("*", "/v1.1/{method}", _echo)
    return await aiohttp_client(app)


@pytest.mark.parametrize(
    ("query", "kwargs", "expected"),
    [
        pytest.param("pair=BTC_USDT", {"data": "quantity=0.1&nonce=99",
                                       "headers": {"Content-Type": FORM}},
                     [["pair", "BTC_USDT"], ["quantity", "0.1"]], id="query-plus-form"),
        pytest.param("pair=BTC_USDT", {"data": b'{"quantity": 1e-8}', "headers": {"Content-Type": JSON}},
                     [["pair", "BTC_USDT"], ["quantity", "1e-8"]], id="query-plus-json"),
        pytest.param("", {"data": b'{"a": "b"}'}, [["a", "b"]], id="json-sniffed"),
        pytest.param("nonce=1&a=1", {}, [["a", "1"]], id="query-only"),
    ],
)
async def test_read_params_over_http(
    client: Client, query: str, kwargs: dict[str, Any], expected: list[list[str]]
) -> None:
    """A real request's query string and body are merged, nonce dropped."""
    response = await client.post(f"/v1.1/order_create?{query}", **kwargs)
    assert response.status == 200
    assert await response.json() == expected


@pytest.mark.parametrize(
    ("url", "kwargs", "slug"),
    [
        pytest.param("/v1.1/x?pair=A", {"data": "pair=A", "headers": {"Content-Type": FORM}},
                     "duplicate_parameter", id="duplicate-across-query-and-body"),
        pytest.param("/v1.1/x?memo=%ff", {}, "bad_encoding", id="bad-query-encoding"),
    ],
)
async def test_read_params_over_http_refuses(
    client: Client, url: str, kwargs: dict[str, Any], slug: str
) -> None:
    """Ambiguous or undecodable requests are refused with the right slug."""
    response = await client.post(url, **kwargs)
    assert response.status == 400
    assert (await response.json())["slug"] == slug


def test_client_key_and_sign_parameters_are_dropped() -> None:
    """Body parameters named Key and Sign (a library's placeholders) are dropped like nonce."""
    assert merge([("Key", "K-x"), ("Sign", "abc"), ("nonce", "1"), ("pair", "BTC_USDT")]) == (
        ("pair", "BTC_USDT"),)


@settings(max_examples=3000, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab1=&+%2F é;"), max_size=30))
def test_parse_form_matches_parse_qsl(text: str) -> None:
    """The split-only fast path for text without % or + decodes exactly as parse_qsl does."""
    try:
        expected: object = parse_qsl(text, keep_blank_values=True, errors="strict", max_num_fields=MAX_FIELDS)
    except (ValueError, UnicodeDecodeError):
        expected = "refused"
    try:
        found: object = parse_form(text, "body")
    except BadRequest:
        found = "refused"
    assert found == expected


@pytest.mark.parametrize("fields", [MAX_FIELDS - 1, MAX_FIELDS, MAX_FIELDS + 1])
def test_parse_form_field_bound_is_the_same_on_both_paths(fields: int) -> None:
    for value in ("1", "%31"):  # fast path, then parse_qsl's
        text = "&".join(f"f{i}={value}" for i in range(fields))
        if fields > MAX_FIELDS:
            with pytest.raises(BadRequest):
                parse_form(text, "body")
        else:
            assert len(parse_form(text, "body")) == fields
