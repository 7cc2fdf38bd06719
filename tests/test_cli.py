"""The CLI as users run it: exit codes, one-line errors, encrypted config edits (SPEC §2-4)."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest

from tests.conftest import (
    PASSPHRASE,
    Stack,
    clean_env,
    cli,
    fake_key,
    fake_secret,
    free_port,
    init_config,
    write_passphrase,
)


def one_line_error(result, code: int, *needles: str) -> None:  # type: ignore[no-untyped-def]
    """The documented exit code, exactly one stderr line, no traceback, naming what is wrong."""
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Path, Path, str, str]:
    key, secret = fake_key(), fake_secret()
    pfile = write_passphrase(tmp_path)
    return init_config(tmp_path, key, secret, pfile, rate=10), pfile, key, secret


def run_check(config: Path, pfile: Path, *extra: str):  # type: ignore[no-untyped-def]
    return cli("check", "--config", str(config), "--passphrase-file", str(pfile), *extra)


def test_init_writes_encrypted_0600_and_check_passes(setup) -> None:  # type: ignore[no-untyped-def]
    """init stores the secret encrypted with mode 0600; check decrypts it and prints no secret."""
    config, pfile, key, secret = setup
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    text = config.read_text()
    assert secret not in text and secret[2:] not in text and key in text
    result = run_check(config, pfile)
    assert result.returncode == 0, result.stderr
    assert "secret decrypts" in result.stdout and secret not in result.stdout + result.stderr


def test_init_refuses_to_overwrite(setup) -> None:  # type: ignore[no-untyped-def]
    """A second init on the same path exits 2 and leaves the file as it was."""
    config, pfile, _, _ = setup
    before = config.read_bytes()
    result = cli("init", "--config", str(config), "--from-stdin", "--passphrase-file", str(pfile),
                 stdin=f"{fake_key()}\n{fake_secret()}\n")
    one_line_error(result, 2, "already exists")
    assert config.read_bytes() == before


@pytest.mark.parametrize(
    ("stdin", "needle"),
    [
        pytest.param("", "API key", id="no-input"),
        pytest.param(f"{fake_key()}\n", "API secret", id="no-secret-line"),
        pytest.param(f"{fake_secret()}\n{fake_secret()}\n", "looks like the secret", id="swapped"),
    ],
)
def test_init_bad_stdin(tmp_path: Path, stdin: str, needle: str) -> None:
    """init --from-stdin with missing or swapped lines exits 2 and writes nothing."""
    pfile = write_passphrase(tmp_path)
    config = tmp_path / "c.yaml"
    result = cli("init", "--config", str(config), "--from-stdin", "--passphrase-file", str(pfile),
                 stdin=stdin)
    one_line_error(result, 2, needle)
    assert not config.exists()


def test_wrong_passphrase_exits_3(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A wrong passphrase cannot unlock: exit 3."""
    config, _, _, _ = setup
    bad = tmp_path / "bad"
    bad.write_text("not the passphrase\n")
    one_line_error(run_check(config, bad), 3, "cannot unlock")


def _edit(config: Path, pattern: str, repl) -> None:  # type: ignore[no-untyped-def]
    text, count = re.subn(pattern, repl, config.read_text(), count=1)
    assert count == 1
    config.write_text(text)


def _flip(match: re.Match[str]) -> str:
    value = match.group(2)
    pos = len(value) // 2
    return match.group(1) + value[:pos] + ("A" if value[pos] != "A" else "B") + value[pos + 1 :]


@pytest.mark.parametrize(
    ("pattern", "repl", "code", "needle"),
    [
        pytest.param(r'(secret: "enc:v1:)([^"]+)', _flip, 4, "accounts.main.secret", id="tampered-value"),
        pytest.param(r'(wrapped_key: ")([^"]+)', _flip, 3, "cannot unlock", id="tampered-header"),
        pytest.param(r'(salt: ")([^"]+)', _flip, 3, "cannot unlock", id="tampered-salt"),
        pytest.param(r"m: 65536", "m: 99999999", 2, "encryption.kdf.m", id="kdf-memory-bomb"),
        pytest.param(r"t: 3,", "t: 1000,", 2, "encryption.kdf.t", id="kdf-time-bomb"),
        pytest.param(r'secret: "enc:v1:[^"]+"', "secret: S-plaintextsecret", 2, "accounts.main.secret",
                     id="plaintext-secret"),
        pytest.param(r"upstream_timeout_s: 15", "upstream_timeout: 15", 2, "limits.upstream_timeout",
                     id="unknown-nested-key"),
        pytest.param(r"^listen:", "listn:", 2, "listn", id="unknown-top-key"),
        pytest.param(r"listen: \S+", "listen: 0.0.0.0:8080", 2, "listen", id="non-loopback"),
        pytest.param(r"upstream: \S+", "upstream: http://api.exmo.com", 2, "https", id="plain-http-upstream"),
        pytest.param(r"accounts:", "accounts: [", 2, "invalid YAML", id="broken-yaml"),
    ],
)
def test_bad_config_exit_codes(setup, pattern: str, repl, code: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    """Tampered, moved, plaintext or unknown values give the documented exit code and name the key."""
    config, pfile, _, secret = setup
    _edit(config, "(?m)" + pattern, repl)
    result = run_check(config, pfile)
    one_line_error(result, code, needle)
    assert secret not in result.stderr


def test_moved_value_fails_authentication(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A secret copied from one account to another fails with exit 4 naming the new path."""
    config, pfile, _, _ = setup
    result = cli("account", "add", "second", "--config", str(config), "--from-stdin",
                 "--passphrase-file", str(pfile), stdin=f"{fake_key()}\n{fake_secret()}\n")
    assert result.returncode == 0, result.stderr
    tokens = re.findall(r'secret: "(enc:v1:[^"]+)"', config.read_text())
    config.write_text(config.read_text().replace(tokens[1], tokens[0]))
    one_line_error(run_check(config, pfile), 4, "accounts.second.secret")


def test_no_passphrase_source_lists_what_was_tried(setup) -> None:  # type: ignore[no-untyped-def]
    """With no source and no terminal, exit 2 and say what was tried and why it was skipped."""
    config, _, _, _ = setup
    result = cli("check", "--config", str(config))
    one_line_error(result, 2, "--passphrase-file", "EXMO_PROXY_PASSPHRASE_FILE", "CREDENTIALS_DIRECTORY",
                   "/run/secrets/exmo-proxy-passphrase", "not a terminal")


def test_passphrase_from_env_path_and_credentials_dir(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """EXMO_PROXY_PASSPHRASE_FILE (a path) and $CREDENTIALS_DIRECTORY both unlock."""
    config, pfile, _, _ = setup
    env_result = cli("check", "--config", str(config), env=clean_env(EXMO_PROXY_PASSPHRASE_FILE=str(pfile)))
    assert env_result.returncode == 0, env_result.stderr
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "exmo-proxy-passphrase").write_text(PASSPHRASE)
    cred_result = cli("check", "--config", str(config), env=clean_env(CREDENTIALS_DIRECTORY=str(creds)))
    assert cred_result.returncode == 0, cred_result.stderr


def test_config_from_env_variable(setup) -> None:  # type: ignore[no-untyped-def]
    """$EXMO_PROXY_CONFIG names the config when --config is absent."""
    config, pfile, _, _ = setup
    result = cli("check", "--passphrase-file", str(pfile), env=clean_env(EXMO_PROXY_CONFIG=str(config)))
    assert result.returncode == 0, result.stderr


def test_account_commands_keep_comments(setup) -> None:  # type: ignore[no-untyped-def]
    """account add/list/set-secret/remove edit in place: comments and order survive."""
    config, pfile, key, _ = setup
    config.write_text("# my own note at the top\n" + config.read_text().replace(
        "accounts:", "accounts:   # trading accounts\n  # the main one:"))
    second_key = fake_key()
    result = cli("account", "add", "spot2", "--config", str(config), "--from-stdin", "--passphrase-file",
                 str(pfile), stdin=f"{second_key}\n{fake_secret()}\n")
    assert result.returncode == 0, result.stderr
    listed = cli("account", "list", "--config", str(config))
    assert listed.returncode == 0 and key in listed.stdout and second_key in listed.stdout
    assert "enc:v1" not in listed.stdout
    before = config.read_text()
    result = cli("account", "set-secret", "spot2", "--config", str(config), "--from-stdin",
                 "--passphrase-file", str(pfile), stdin=f"{fake_secret()}\n")
    assert result.returncode == 0, result.stderr
    after = config.read_text()
    assert before != after and len(before.splitlines()) == len(after.splitlines())
    assert cli("account", "remove", "spot2", "--config", str(config)).returncode == 0
    text = config.read_text()
    assert text.startswith("# my own note at the top\n")
    assert "accounts:   # trading accounts\n  # the main one:" in text and "spot2" not in text
    assert run_check(config, pfile).returncode == 0
    assert stat.S_IMODE(config.stat().st_mode) == 0o600


def test_set_secret_replaces_a_plaintext_secret(setup) -> None:  # type: ignore[no-untyped-def]
    """The fix the plaintext error suggests works: set-secret encrypts a new value in place."""
    config, pfile, _, _ = setup
    _edit(config, r'secret: "enc:v1:[^"]+"', "secret: S-plaintext")
    result = cli("account", "set-secret", "main", "--config", str(config), "--from-stdin",
                 "--passphrase-file", str(pfile), stdin=f"{fake_secret()}\n")
    assert result.returncode == 0, result.stderr
    assert "S-plaintext" not in config.read_text()
    assert run_check(config, pfile).returncode == 0


def test_account_remove_refuses_the_last_account(setup) -> None:  # type: ignore[no-untyped-def]
    """Removing the only account would leave an unusable config: exit 2, file unchanged."""
    config, _, _, _ = setup
    before = config.read_bytes()
    one_line_error(cli("account", "remove", "main", "--config", str(config)), 2, "only account")
    assert config.read_bytes() == before


def test_passphrase_change_rewraps_only_the_key(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """After passphrase change the old one fails (3), the new one works, values are unchanged."""
    config, pfile, _, _ = setup
    tokens_before = re.findall(r"enc:v1:[^\"]+", config.read_text())
    new = tmp_path / "new-pass"
    new.write_text("a much better passphrase\n")
    result = cli("passphrase", "change", "--config", str(config), "--passphrase-file", str(pfile),
                 "--new-passphrase-file", str(new))
    assert result.returncode == 0, result.stderr
    assert re.findall(r"enc:v1:[^\"]+", config.read_text()) == tokens_before
    one_line_error(run_check(config, pfile), 3)
    assert run_check(config, new).returncode == 0


def test_missing_config_exits_2(tmp_path: Path) -> None:
    """A config path that does not exist is a one-line exit 2 that says how to create one."""
    one_line_error(cli("check", "--config", str(tmp_path / "nope.yaml")), 2, "exmo-proxy init")


def test_run_on_a_busy_port_fails_cleanly(setup) -> None:  # type: ignore[no-untyped-def]
    """`run` on a port already in use exits 1 with one line."""
    import socket

    config, pfile, _, _ = setup
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = cli("run", "--config", str(config), "--passphrase-file", str(pfile),
                     "--listen", f"127.0.0.1:{port}")
    one_line_error(result, 1, "cannot listen")


def test_health_command(stack: Stack) -> None:
    """`health` exits 0 while the daemon answers and 1 when nothing listens."""
    ok = cli("health", "--url", stack.base)
    assert ok.returncode == 0, ok.stderr
    down = cli("health", "--url", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1


def test_python_dash_m_and_console_script_agree() -> None:
    """`python -m proxy --version` works like the console script."""
    result = cli("--version")
    assert result.returncode == 0 and "exmo-proxy" in result.stdout
    assert os.access(os.path.join(os.path.dirname(os.sys.executable), "exmo-proxy"), os.X_OK)  # type: ignore[attr-defined]


def test_passphrase_change_never_reads_the_new_one_from_old_sources(setup) -> None:  # type: ignore[no-untyped-def]
    """Without --new-passphrase-file and no terminal, change refuses (the env file holds the OLD one)."""
    config, pfile, _, _ = setup
    before = config.read_bytes()
    result = cli("passphrase", "change", "--config", str(config),
                 env=clean_env(EXMO_PROXY_PASSPHRASE_FILE=str(pfile)))
    one_line_error(result, 2, "--new-passphrase-file")
    same = cli("passphrase", "change", "--config", str(config), "--passphrase-file", str(pfile),
               "--new-passphrase-file", str(pfile))
    one_line_error(same, 2, "same as the current")
    assert config.read_bytes() == before


def test_set_secret_refuses_a_public_key(setup) -> None:  # type: ignore[no-untyped-def]
    """Piping the key line to set-secret (which reads only the secret) is refused, not stored."""
    config, pfile, _, _ = setup
    before = config.read_bytes()
    result = cli("account", "set-secret", "main", "--config", str(config), "--from-stdin",
                 "--passphrase-file", str(pfile), stdin=f"{fake_key()}\n{fake_secret()}\n")
    one_line_error(result, 2, "looks like the public key")
    assert config.read_bytes() == before


def test_adding_a_second_account_keeps_the_first_as_default(setup) -> None:  # type: ignore[no-untyped-def]
    """Requests that named no account keep going to the first account after `account add`."""
    config, pfile, _, _ = setup
    result = cli("account", "add", "hedge", "--config", str(config), "--from-stdin",
                 "--passphrase-file", str(pfile), stdin=f"{fake_key()}\n{fake_secret()}\n")
    assert result.returncode == 0 and "default_account: main" in result.stdout
    assert "\ndefault_account: main\n" in config.read_text()
    checked = run_check(config, pfile)
    assert "account main (default)" in checked.stdout


def test_check_shows_scopes_and_warns_about_unknown_methods(setup) -> None:  # type: ignore[no-untyped-def]
    """check prints each account's allow list and withdrawal lock, and flags a misspelt method."""
    config, pfile, _, _ = setup
    scopes = r"\1\n    allow: [user_info, user_infoo]\n    allow_withdrawals: false"
    _edit(config, r"(    key: K-\w+)", scopes)
    result = run_check(config, pfile)
    assert result.returncode == 0, result.stderr
    assert "may call: user_info, user_infoo; withdrawals: locked" in result.stdout
    assert "'user_infoo' is not a known EXMO method" in result.stderr


def test_health_against_a_non_http_port(tmp_path: Path) -> None:
    """`health` pointed at something that is not HTTP fails with one line, not a traceback."""
    import socket
    import threading

    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()

        def babble() -> None:
            conn, _ = server.accept()
            with conn:
                conn.sendall(b"SSH-2.0-OpenSSH\r\n")

        threading.Thread(target=babble, daemon=True).start()
        result = cli("health", "--url", f"http://127.0.0.1:{server.getsockname()[1]}")
    one_line_error(result, 1, "unhealthy")


def test_a_second_daemon_on_the_same_state_dir_is_refused(stack: Stack) -> None:
    """Two daemons on one state_dir would fight over nonce ceilings: the second exits 1 and says why."""
    result = cli("run", "--config", str(stack.config), "--passphrase-file", str(stack.passphrase_file),
                 "--listen", f"127.0.0.1:{free_port()}", "--upstream", stack.sim.url)
    one_line_error(result, 1, "another exmo-proxy")


@pytest.mark.parametrize("target", ["config", "passphrase"])
def test_group_readable_files_are_refused(setup, target: str) -> None:  # type: ignore[no-untyped-def]
    """A config or passphrase file other users can read is refused with the chmod that fixes it."""
    config, pfile, _, _ = setup
    loose = config if target == "config" else pfile
    loose.chmod(0o644)
    one_line_error(run_check(config, pfile), 2, "0644", f"chmod 600 {loose}")
    loose.chmod(0o600)
    assert run_check(config, pfile).returncode == 0


def test_daemon_disables_core_dumps(stack: Stack) -> None:
    """The running daemon has a core-file limit of 0 (the decrypted secret never lands on disk)."""
    limits = Path(f"/proc/{stack.daemon.proc.pid}/limits").read_text()
    core = next(line for line in limits.splitlines() if line.startswith("Max core file size"))
    assert core.split()[4:6] == ["0", "0"]


def test_halt_warns_when_no_daemon_uses_the_state_dir(setup, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """`halt on` for a state_dir no daemon holds says so (the daemon may run with --state-dir)."""
    config, _, _, _ = setup
    elsewhere = tmp_path / "elsewhere"
    result = cli("halt", "on", "--config", str(config), "--state-dir", str(elsewhere))
    assert result.returncode == 0 and "HALTED" in result.stdout
    assert "no running daemon uses" in result.stderr and str(elsewhere) in result.stderr
    assert (elsewhere / "halt.json").exists()
