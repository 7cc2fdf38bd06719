"""Secrets in memory and the passphrase lookup order (explicit file, env path, systemd, docker, tty)."""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from pathlib import Path

import pytest

from proxy.vault.passphrase import (
    CREDENTIAL_NAME,
    PASSPHRASE_ENV,
    PassphraseError,
    PassphraseSources,
    check_new_passphrase,
    read_passphrase_file,
)
from proxy.vault.secret import Secret

SECRET = "S-" + "0123456789abcdef0123456789abcdef01234567"


# --- Secret ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "render",
    [
        pytest.param(repr, id="repr"),
        pytest.param(str, id="str"),
        pytest.param(lambda s: f"{s}", id="f-string"),
        pytest.param(lambda s: "%s %r" % (s, s), id="percent-format"),  # noqa: UP031 - the point of the case
        pytest.param(lambda s: "{}".format(s), id="str-format"),  # noqa: UP032 - the point of the case
        pytest.param(lambda s: repr([s, {"k": s}]), id="inside-containers"),
    ],
)
def test_secret_is_redacted_when_printed(render: Callable[[Secret], str]) -> None:
    """However a Secret is formatted, its value does not appear."""
    text = render(Secret(SECRET))
    assert SECRET not in text
    assert SECRET[2:10] not in text
    assert "***" in text


def test_secret_reveal_and_encode() -> None:
    """reveal() gives the value back; encode() is its UTF-8 bytes."""
    secret = Secret("S-p\u00e4ss")
    assert secret.reveal() == "S-p\u00e4ss"
    assert secret.encode() == "S-p\u00e4ss".encode()
    assert bool(secret) is True
    assert bool(Secret("")) is False


@pytest.mark.parametrize(
    "serialise",
    [
        pytest.param(pickle.dumps, id="pickle-default"),
        pytest.param(lambda s: pickle.dumps(s, protocol=0), id="pickle-protocol-0"),
        pytest.param(lambda s: pickle.dumps(s, protocol=pickle.HIGHEST_PROTOCOL), id="pickle-highest"),
        pytest.param(copy.copy, id="copy"),
    ],
)
def test_secret_cannot_be_pickled(serialise: Callable[[Secret], object]) -> None:
    """A Secret refuses serialisation, so it cannot leak into a pickle, a cache or a queue."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        serialise(Secret(SECRET))


def test_secret_has_no_instance_dict() -> None:
    """With __slots__, vars() cannot dump the value."""
    with pytest.raises(TypeError):
        vars(Secret(SECRET))


# --- passphrase files ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"pass phrase\n", "pass phrase", id="lf-stripped"),
        pytest.param(b"pass phrase\r\n", "pass phrase", id="crlf-stripped"),
        pytest.param(b"pass phrase", "pass phrase", id="no-newline"),
        pytest.param(b"  pass phrase  \n", "  pass phrase  ", id="spaces-kept"),
        pytest.param(b"\tpass phrase\t\n", "\tpass phrase\t", id="tabs-kept"),
        pytest.param(b"pass phrase\n\n", "pass phrase\n", id="only-one-newline-stripped"),
        pytest.param("p\u00e4ssphr\u00e4se\n".encode(), "p\u00e4ssphr\u00e4se", id="utf8"),
    ],
)
def test_passphrase_file_trailing_newline_stripped(tmp_path: Path, content: bytes, expected: str) -> None:
    """One trailing LF or CRLF is stripped; all other whitespace is part of the passphrase."""
    path = tmp_path / "pp"
    path.write_bytes(content)
    assert read_passphrase_file(path, "test").reveal() == expected


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        pytest.param(b"pass phrase\r", "pass phrase\r", id="trailing-lone-cr"),
        pytest.param(b"pass\rphrase\n", "pass\rphrase", id="inner-cr"),
        pytest.param(b"pass\r\nphrase\n", "pass\r\nphrase", id="inner-crlf"),
    ],
)
def test_passphrase_file_keeps_carriage_returns(tmp_path: Path, content: bytes, expected: str) -> None:
    """Only the final newline is removed: a CR that is not part of it stays in the passphrase."""
    path = tmp_path / "pp"
    path.write_bytes(content)
    assert read_passphrase_file(path, "test").reveal() == expected


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"\n", id="newline-only"),
        pytest.param(b"\r\n", id="crlf-only"),
    ],
)
def test_empty_passphrase_file_refused(tmp_path: Path, content: bytes) -> None:
    """An empty passphrase file is an error naming the file, never an empty passphrase."""
    path = tmp_path / "pp"
    path.write_bytes(content)
    with pytest.raises(PassphraseError, match="empty") as info:
        read_passphrase_file(path, "--passphrase-file")
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    "make",
    [
        pytest.param(lambda p: None, id="missing"),
        pytest.param(lambda p: p.mkdir(), id="directory"),
        pytest.param(lambda p: p.write_bytes(b"\xff\xfe bad\n"), id="not-utf8"),
    ],
)
def test_unreadable_passphrase_file_refused(tmp_path: Path, make: Callable[[Path], object]) -> None:
    """A missing, unreadable or non-UTF-8 passphrase file is a PassphraseError naming the origin and path."""
    path = tmp_path / "pp"
    make(path)
    with pytest.raises(PassphraseError) as info:
        read_passphrase_file(path, "--passphrase-file")
    assert "--passphrase-file" in str(info.value)
    assert str(path) in str(info.value)


# --- lookup order ----------------------------------------------------------------------------------------


class Sources:
    """Builds a PassphraseSources where every source can be switched on, each with its own value."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.env: dict[str, str] = {}
        self.explicit: str | None = None
        self.docker = tmp_path / "run-secrets" / CREDENTIAL_NAME
        self.tty = False
        self.prompts: list[str] = []
        self.answers: list[str] = []

    def _file(self, name: str, value: str) -> Path:
        path = self.tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(value + "\n")
        return path

    def with_explicit(self) -> Sources:
        self.explicit = str(self._file("explicit", "from-explicit"))
        return self

    def with_env(self) -> Sources:
        self.env[PASSPHRASE_ENV] = str(self._file("env", "from-env"))
        return self

    def with_systemd(self) -> Sources:
        self._file(f"creds/{CREDENTIAL_NAME}", "from-systemd")
        self.env["CREDENTIALS_DIRECTORY"] = str(self.tmp / "creds")
        return self

    def with_docker(self) -> Sources:
        self._file(f"run-secrets/{CREDENTIAL_NAME}", "from-docker")
        return self

    def with_tty(self, *answers: str) -> Sources:
        self.tty = True
        self.answers = list(answers) or ["from-tty"]
        return self

    def _prompt(self, text: str) -> str:
        self.prompts.append(text)
        return self.answers.pop(0)

    def build(self) -> PassphraseSources:
        return PassphraseSources(explicit=self.explicit, env=self.env, docker_secret=self.docker,
                                 is_tty=lambda: self.tty, prompt=self._prompt)


@pytest.mark.parametrize(
    ("enabled", "expected"),
    [
        pytest.param(("explicit", "env", "systemd", "docker", "tty"), "from-explicit", id="explicit-first"),
        pytest.param(("env", "systemd", "docker", "tty"), "from-env", id="env-path-second"),
        pytest.param(("systemd", "docker", "tty"), "from-systemd", id="systemd-credential-third"),
        pytest.param(("docker", "tty"), "from-docker", id="docker-secret-fourth"),
        pytest.param(("tty",), "from-tty", id="prompt-last"),
        pytest.param(("explicit", "tty"), "from-explicit", id="explicit-beats-prompt"),
        pytest.param(("env", "docker"), "from-env", id="env-beats-docker"),
    ],
)
def test_passphrase_source_order(tmp_path: Path, enabled: tuple[str, ...], expected: str) -> None:
    """The first available source in the documented order wins; later ones are not consulted."""
    sources = Sources(tmp_path)
    for name in enabled:
        getattr(sources, f"with_{name}")()
    assert sources.build().get().reveal() == expected
    if expected != "from-tty":
        assert sources.prompts == []


def test_no_source_lists_everything_tried(tmp_path: Path) -> None:
    """With no source at all, the error lists every source it tried, in order."""
    sources = Sources(tmp_path)
    with pytest.raises(PassphraseError) as info:
        sources.build().get()
    message = str(info.value)
    tried = ["--passphrase-file", PASSPHRASE_ENV, "CREDENTIALS_DIRECTORY", str(sources.docker), "prompt"]
    positions = [message.find(item) for item in tried]
    assert -1 not in positions, message
    assert positions == sorted(positions)
    assert "not a terminal" in message


def test_credentials_directory_without_the_file_is_reported(tmp_path: Path) -> None:
    """$CREDENTIALS_DIRECTORY set but lacking the credential is named in the error and skipped."""
    sources = Sources(tmp_path)
    (tmp_path / "creds").mkdir()
    sources.env["CREDENTIALS_DIRECTORY"] = str(tmp_path / "creds")
    with pytest.raises(PassphraseError, match=f"{CREDENTIAL_NAME}: no such file"):
        sources.build().get()
    assert sources.with_docker().build().get().reveal() == "from-docker"


@pytest.mark.parametrize(
    ("configure", "origin"),
    [
        pytest.param(lambda s: setattr(s, "explicit", str(s.tmp / "missing")), "--passphrase-file",
                     id="explicit-missing"),
        pytest.param(lambda s: s.env.update({PASSPHRASE_ENV: str(s.tmp / "missing")}), PASSPHRASE_ENV,
                     id="env-path-missing"),
    ],
)
def test_a_named_file_that_fails_does_not_fall_through(
    tmp_path: Path, configure: Callable[[Sources], object], origin: str
) -> None:
    """A passphrase file the user named but that cannot be read is an error, not a silent fallback."""
    sources = Sources(tmp_path).with_docker().with_tty()
    configure(sources)
    with pytest.raises(PassphraseError, match=origin):
        sources.build().get()
    assert sources.prompts == []


def test_empty_env_value_is_not_a_source(tmp_path: Path) -> None:
    """An empty EXMO_PROXY_PASSPHRASE_FILE counts as unset."""
    sources = Sources(tmp_path).with_docker()
    sources.env[PASSPHRASE_ENV] = ""
    assert sources.build().get().reveal() == "from-docker"


def test_passphrase_value_in_env_is_never_used(tmp_path: Path) -> None:
    """Only a path may come from the environment: a passphrase-looking variable is not read."""
    sources = Sources(tmp_path)
    sources.env["EXMO_PROXY_PASSPHRASE"] = "in-the-environment"
    with pytest.raises(PassphraseError):
        sources.build().get()


def test_prompt_shows_the_purpose_and_refuses_empty(tmp_path: Path) -> None:
    """The tty prompt shows the purpose text; an empty answer is refused."""
    sources = Sources(tmp_path).with_tty("typed")
    assert sources.build().get("Unlock config: ").reveal() == "typed"
    assert sources.prompts == ["Unlock config: "]
    empty = Sources(tmp_path).with_tty("")
    with pytest.raises(PassphraseError, match="empty"):
        empty.build().get()


def test_default_sources_use_the_real_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """By default the environment is os.environ (read at lookup time)."""
    path = tmp_path / "pp"
    path.write_text("from-os-environ\n")
    monkeypatch.setenv(PASSPHRASE_ENV, str(path))
    assert PassphraseSources().get().reveal() == "from-os-environ"


# --- new passphrases ---------------------------------------------------------------------------------


def test_new_asks_twice_on_a_tty(tmp_path: Path) -> None:
    """On a terminal a new passphrase is asked twice and accepted when both match."""
    sources = Sources(tmp_path).with_tty("long enough", "long enough")
    assert sources.build().new().reveal() == "long enough"
    assert len(sources.prompts) == 2
    assert "New" in sources.prompts[0]
    assert "Repeat" in sources.prompts[1]


def test_new_refuses_a_mismatch(tmp_path: Path) -> None:
    """Two different answers are refused."""
    sources = Sources(tmp_path).with_tty("long enough", "long enougH")
    with pytest.raises(PassphraseError, match="differ"):
        sources.build().new()


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        pytest.param("1234567", False, id="seven-chars"),
        pytest.param("", False, id="empty"),
        pytest.param("12345678", True, id="eight-chars"),
        pytest.param("\u00e4" * 8, True, id="eight-non-ascii-chars"),
    ],
)
def test_new_enforces_minimum_length(tmp_path: Path, value: str, ok: bool) -> None:
    """A new passphrase needs at least 8 characters."""
    sources = Sources(tmp_path).with_tty(value, value)
    if ok:
        assert sources.build().new().reveal() == value
    else:
        with pytest.raises(PassphraseError, match="at least 8"):
            sources.build().new()


def test_new_from_a_file_when_not_interactive(tmp_path: Path) -> None:
    """Without a terminal, a new passphrase comes from the sources (once) and is still length-checked."""
    sources = Sources(tmp_path).with_explicit()
    assert sources.build().new().reveal() == "from-explicit"
    short = Sources(tmp_path)
    short.explicit = str(short._file("short", "short"))
    with pytest.raises(PassphraseError, match="at least 8"):
        short.build().new()


def test_new_with_explicit_file_does_not_prompt_even_on_a_tty(tmp_path: Path) -> None:
    """--passphrase-file wins over prompting for a new passphrase too."""
    sources = Sources(tmp_path).with_explicit().with_tty()
    assert sources.build().new().reveal() == "from-explicit"
    assert sources.prompts == []


def test_check_new_passphrase_message_hides_the_value() -> None:
    """The too-short error does not echo the passphrase."""
    with pytest.raises(PassphraseError) as info:
        check_new_passphrase(Secret("hunter2"))
    assert "hunter2" not in str(info.value)
