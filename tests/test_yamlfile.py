"""Strict YAML parsing and line-level edits that keep the user's comments and key order."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from proxy.config import yamlfile
from proxy.config.checks import ConfigError
from proxy.config.yamlfile import Span

KEY_A = "K-" + "0123456789abcdef0123456789abcdef01234567"
KEY_B = "K-" + "89abcdef0123456789abcdef0123456789abcdef"
KEY_C = "K-" + "fedcba9876543210fedcba9876543210fedcba98"

REALISTIC = textwrap.dedent(f"""\
    # exmo-signing-proxy config (hand-edited)
    listen: 127.0.0.1:8080            # or unix:/run/exmo-proxy/proxy.sock
    upstream: https://api.exmo.com

    # accounts: one block per EXMO API key
    accounts:
      # the trading account
      main:
        key: {KEY_A}
        secret: "enc:v1:AAAA"   # set with `exmo-proxy account set-secret main`
        allow: [user_info, order_create]

      # read-only, for the dashboard
      "reader":
        key: {KEY_B}
        secret: 'enc:v1:BBBB'
      # (add more accounts above this line)

    limits:
      rate_per_second: 10          # EXMO: 10 requests/s
      upstream_timeout_s: 15
    encryption:  # written by exmo-proxy
      version: 1
      kdf: {{alg: argon2id, m: 65536, t: 3, p: 4, salt: "c2FsdHNhbHRzYWx0c2FsdA"}}
      wrapped_key: "d3JhcHBlZA"

    # notes at the end
    # - rotate keys yearly
    """)

COMMENTS = [line for line in REALISTIC.splitlines() if line.lstrip().startswith("#") or "  #" in line]


def _doc(text: str = REALISTIC) -> dict[str, object]:
    return yamlfile.parse_yaml(text, "test.yaml")


def _lines() -> list[str]:
    return REALISTIC.splitlines()


def _assert_comments_kept(text: str) -> None:
    for comment in COMMENTS:
        assert comment in text.splitlines(), comment


# --- parse_yaml -----------------------------------------------------------------------------------


def test_parse_realistic_config() -> None:
    """The realistic fixture parses to the expected structure (quoted keys unquoted)."""
    doc = _doc()
    assert list(doc) == ["listen", "upstream", "accounts", "limits", "encryption"]
    accounts = doc["accounts"]
    assert isinstance(accounts, dict)
    assert list(accounts) == ["main", "reader"]
    assert accounts["reader"] == {"key": KEY_B, "secret": "enc:v1:BBBB"}


@pytest.mark.parametrize(
    ("text", "key", "line"),
    [
        pytest.param("a: 1\nb: 2\na: 3\n", "'a'", 3, id="top-level"),
        pytest.param("accounts:\n  main:\n    secret: x\n    secret: y\n", "'secret'", 4, id="nested-secret"),
        pytest.param("a: 1\n'a': 2\n", "'a'", 2, id="quoted-and-plain"),
        pytest.param("x: {k: 1, k: 2}\n", "'k'", 1, id="flow-mapping"),
    ],
)
def test_duplicate_keys_refused_naming_key_and_line(text: str, key: str, line: int) -> None:
    """A repeated key is an error naming the key and its line, not a silent last-one-wins."""
    with pytest.raises(ConfigError, match=f"test.yaml: .*line {line}.*{key}"):
        yamlfile.parse_yaml(text, "test.yaml")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("- a\n- b\n", id="list"),
        pytest.param("just a string\n", id="scalar"),
        pytest.param("42\n", id="number"),
    ],
)
def test_non_mapping_top_level_refused(text: str) -> None:
    """The top level must be a mapping."""
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        yamlfile.parse_yaml(text, "test.yaml")


@pytest.mark.parametrize(
    "text",
    [pytest.param("", id="empty"), pytest.param("# only a comment\n", id="comment-only")],
)
def test_empty_document_is_an_empty_mapping(text: str) -> None:
    """An empty file parses to {} so validation can name what is missing."""
    assert yamlfile.parse_yaml(text, "test.yaml") == {}


def test_invalid_yaml_names_file_and_line() -> None:
    """Broken YAML is a ConfigError naming the file and the line."""
    with pytest.raises(ConfigError, match=r"cfg\.yaml: invalid YAML at line 3"):
        yamlfile.parse_yaml("a: 1\nb: 2\n  c: 3\n", "cfg.yaml")


def test_unsafe_tags_refused() -> None:
    """Python object tags are not constructed (a SafeLoader is used)."""
    with pytest.raises(ConfigError):
        yamlfile.parse_yaml("a: !!python/object/apply:os.getcwd []\n", "test.yaml")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("? [a, b]\n: 1\n", id="sequence-key"),
        pytest.param("? {a: 1}\n: 1\n", id="mapping-key"),
        pytest.param("accounts:\n  ? [x]\n  : 1\n", id="nested-sequence-key"),
    ],
)
def test_complex_keys_are_config_errors(text: str) -> None:
    """A complex key such as `? [a, b]` is a ConfigError, not an uncaught TypeError."""
    with pytest.raises(ConfigError, match=r"test\.yaml"):
        yamlfile.parse_yaml(text, "test.yaml")


def test_load_text_missing_file_is_config_error(tmp_path: Path) -> None:
    """A missing config file is a ConfigError that says how to create one."""
    with pytest.raises(ConfigError, match="exmo-proxy init"):
        yamlfile.load_text(tmp_path / "absent.yaml")


# --- find_block -----------------------------------------------------------------------------------


def _span_text(span: Span) -> list[str]:
    return _lines()[span.start : span.end]


@pytest.mark.parametrize(
    ("path", "first", "last"),
    [
        pytest.param(("listen",), "listen:", "listen:", id="scalar"),
        pytest.param(("accounts",), "accounts:", "    secret: 'enc:v1:BBBB'",
                     id="mapping-excludes-trailing-comment"),
        pytest.param(("accounts", "main"), "  main:", "    allow:", id="first-child"),
        pytest.param(("accounts", "reader"), '  "reader":', "    secret: 'enc:v1:BBBB'", id="quoted-key"),
        pytest.param(("accounts", "main", "secret"), '    secret: "enc:v1:AAAA"', '    secret: "enc',
                     id="leaf"),
        pytest.param(("encryption",), "encryption:", '  wrapped_key: "d3JhcHBlZA"', id="last-block"),
    ],
)
def test_find_block_spans(path: tuple[str, ...], first: str, last: str) -> None:
    """find_block returns the key line through its last content line (trailing comments excluded)."""
    span = yamlfile.find_block(_lines(), path)
    assert span is not None
    block = _span_text(span)
    assert block[0].startswith(first)
    assert block[-1].startswith(last)


@pytest.mark.parametrize(
    "path",
    [
        pytest.param(("key",), id="nested-key-not-at-top"),
        pytest.param(("main",), id="child-not-at-top"),
        pytest.param(("accounts", "nobody"), id="absent-child"),
        pytest.param(("accounts", "main", "key", "deeper"), id="below-a-scalar"),
        pytest.param(("limits", "secret"), id="key-under-another-parent"),
        pytest.param(("rotate keys yearly",), id="text-in-comment"),
    ],
)
def test_find_block_absent(path: tuple[str, ...]) -> None:
    """Keys are matched only at their own level under their own parent, never inside comments."""
    assert yamlfile.find_block(_lines(), path) is None


def test_find_block_ignores_a_commented_out_key() -> None:
    """A commented-out key with the same name is not the block."""
    lines = ["# accounts:", "#   old: {}", "accounts:", "  main:", "    key: x"]
    span = yamlfile.find_block(lines, ("accounts",))
    assert span == Span(2, 5, 0)


# --- replace / delete / append --------------------------------------------------------------------


def test_replace_block_changes_only_that_line() -> None:
    """Replacing a leaf changes its line only; comments, blank lines and order stay."""
    new = yamlfile.replace_block(REALISTIC, ("accounts", "main", "secret"), ['    secret: "enc:v1:NEW"'])
    assert new is not None
    old_lines, new_lines = _lines(), new.splitlines()
    assert len(old_lines) == len(new_lines)
    changed = [i for i, (a, b) in enumerate(zip(old_lines, new_lines, strict=True)) if a != b]
    assert len(changed) == 1
    assert new_lines[changed[0]] == '    secret: "enc:v1:NEW"'
    expected = _doc()
    expected["accounts"]["main"]["secret"] = "enc:v1:NEW"  # type: ignore[index]
    assert _doc(new) == expected


def test_replace_block_of_a_mapping() -> None:
    """Replacing a whole mapping block (the encryption header) keeps what follows it."""
    lines = ["encryption:", "  version: 1", "  kdf: {alg: argon2id, m: 8192, t: 1, p: 1, salt: x}",
             '  wrapped_key: "NEW"']
    new = yamlfile.replace_block(REALISTIC, ("encryption",), lines)
    assert new is not None
    assert new.endswith("# notes at the end\n# - rotate keys yearly\n")
    assert _doc(new)["encryption"] == {"version": 1, "kdf": {"alg": "argon2id", "m": 8192, "t": 1, "p": 1,
                                       "salt": "x"}, "wrapped_key": "NEW"}
    assert "# written by exmo-proxy" not in new  # the header line itself was replaced


def test_delete_block_of_quoted_child_keeps_everything_else() -> None:
    """Deleting an account removes its lines only; the comments around it and the order stay."""
    new = yamlfile.delete_block(REALISTIC, ("accounts", "reader"))
    assert new is not None
    expected = _doc()
    del expected["accounts"]["reader"]  # type: ignore[attr-defined]
    assert _doc(new) == expected
    assert KEY_B not in new
    _assert_comments_kept(new)
    assert list(_doc(new)) == list(_doc())


def test_delete_first_child_keeps_its_sibling() -> None:
    """Deleting the first account leaves the second one intact, with its comment."""
    new = yamlfile.delete_block(REALISTIC, ("accounts", "main"))
    assert new is not None
    assert KEY_A not in new
    assert "allow:" not in new
    assert _doc(new)["accounts"] == {"reader": {"key": KEY_B, "secret": "enc:v1:BBBB"}}
    assert "  # read-only, for the dashboard" in new.splitlines()


def test_append_child_goes_after_the_last_child_before_trailing_comments() -> None:
    """A new account is added at the end of `accounts`, above the comment that follows it."""
    child = ["extra:", f"  key: {KEY_C}", '  secret: "enc:v1:CCCC"']
    new = yamlfile.append_child(REALISTIC, ("accounts",), child)
    assert new is not None
    doc = _doc(new)
    assert list(doc["accounts"]) == ["main", "reader", "extra"]  # type: ignore[call-overload]
    assert doc["accounts"]["extra"] == {"key": KEY_C, "secret": "enc:v1:CCCC"}  # type: ignore[index]
    lines = new.splitlines()
    assert lines.index("  extra:") < lines.index("  # (add more accounts above this line)")
    assert lines[lines.index("  extra:") - 1] == "    secret: 'enc:v1:BBBB'"
    _assert_comments_kept(new)
    assert list(doc) == list(_doc())


def test_append_child_follows_existing_indentation() -> None:
    """Children are indented like their existing siblings (here four spaces)."""
    text = "accounts:\n    main:\n        key: x\n        secret: y\nlimits: {}\n"
    new = yamlfile.append_child(text, ("accounts",), ["extra:", "    key: z"])
    assert new == (
        "accounts:\n    main:\n        key: x\n        secret: y\n    extra:\n        key: z\nlimits: {}\n"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("accounts: {}\n", "accounts:\n  new:\n    key: z\n", id="alone"),
        pytest.param("listen: 127.0.0.1:8080\naccounts: {}\n# tail\n",
                     "listen: 127.0.0.1:8080\naccounts:\n  new:\n    key: z\n# tail\n", id="between"),
        pytest.param("accounts:   {  }\nlimits:\n  max_wait_s: 1\n",
                     "accounts:\n  new:\n    key: z\nlimits:\n  max_wait_s: 1\n", id="spaced-braces"),
    ],
)
def test_append_child_to_empty_flow_mapping(text: str, expected: str) -> None:
    """`accounts: {}` becomes a block mapping holding the new child."""
    new = yamlfile.append_child(text, ("accounts",), ["new:", "  key: z"])
    assert new == expected
    assert _doc(new)["accounts"] == {"new": {"key": "z"}}


@pytest.mark.parametrize(
    ("text", "path"),
    [
        pytest.param("accounts: {main: {key: x}}\n", ("accounts",), id="non-empty-flow"),
        pytest.param("limits:\n  rate_per_second: 10\n", ("accounts",), id="absent"),
        pytest.param("{accounts: {main: {key: x}}}\n", ("accounts",), id="flow-document"),
    ],
)
def test_append_child_declines_what_it_cannot_edit(text: str, path: tuple[str, ...]) -> None:
    """Flow mappings with content, or a missing parent, return None so the caller falls back."""
    assert yamlfile.append_child(text, path, ["new:", "  key: z"]) is None


def test_replace_and_delete_return_none_for_a_missing_key() -> None:
    """Edits of a key that is not there return None rather than guessing."""
    assert yamlfile.replace_block(REALISTIC, ("accounts", "nobody"), ["x: 1"]) is None
    assert yamlfile.delete_block(REALISTIC, ("accounts", "nobody")) is None


# --- verified_edit --------------------------------------------------------------------------------


def test_verified_edit_keeps_text_that_parses_to_expected() -> None:
    """An in-place edit that says exactly what was intended is kept (flag True)."""
    new = yamlfile.delete_block(REALISTIC, ("accounts", "reader"))
    expected = _doc()
    del expected["accounts"]["reader"]  # type: ignore[attr-defined]
    assert yamlfile.verified_edit(new, expected) == (new, True)


def test_verified_edit_falls_back_for_flow_style_input() -> None:
    """A flow-style file cannot be edited in place: the result is a plain dump and the flag False."""
    old = f"{{listen: '127.0.0.1:8080', accounts: {{main: {{key: {KEY_A}, secret: 'enc:v1:AAAA'}}}}}}\n"
    expected = yamlfile.parse_yaml(old, "flow.yaml")
    expected["accounts"]["extra"] = {"key": KEY_C, "secret": "enc:v1:CCCC"}
    new = yamlfile.append_child(old, ("accounts",), ["extra:", f"  key: {KEY_C}"])
    text, kept = yamlfile.verified_edit(new, expected)
    assert kept is False
    assert yamlfile.parse_yaml(text, "dumped") == expected
    assert list(yamlfile.parse_yaml(text, "dumped")["accounts"]) == ["main", "extra"]


@pytest.mark.parametrize(
    "new_text",
    [
        pytest.param("listen: 127.0.0.1:9999\n", id="says-something-else"),
        pytest.param("listen: [unclosed\n", id="invalid-yaml"),
        pytest.param("listen: a\nlisten: b\n", id="duplicate-key"),
    ],
)
def test_verified_edit_refuses_text_that_does_not_match(new_text: str) -> None:
    """An edit whose text does not parse to the intended document is replaced by a dump."""
    expected = {"listen": "127.0.0.1:8080"}
    text, kept = yamlfile.verified_edit(new_text, expected)
    assert kept is False
    assert yamlfile.parse_yaml(text, "dumped") == expected
