"""A new config file's text, as `exmo-proxy init` and the demo write it: one account, its secret
sealed under a fresh data key wrapped with the passphrase, and the documented defaults."""

from __future__ import annotations

from proxy.config.accounts import secret_path
from proxy.config.addresses import DEFAULT_UPSTREAM
from proxy.config.model import DEFAULT_LISTEN
from proxy.vault import encryption
from proxy.vault.secret import Secret


def account_lines(name: str, key: str, token: str) -> list[str]:
    return [f"{name}:", f"  key: {key}", f'  secret: "{token}"']


def encryption_lines(kdf: encryption.KdfParams, wrapped: str) -> list[str]:
    salt = encryption.b64encode(kdf.salt)
    return [
        "encryption:  # written by exmo-proxy: format version, Argon2id parameters, wrapped data key",
        f"  version: {encryption.FORMAT_VERSION}",
        f'  kdf: {{alg: argon2id, m: {kdf.m}, t: {kdf.t}, p: {kdf.p}, salt: "{salt}"}}',
        f'  wrapped_key: "{wrapped}"',
    ]


def render_new_config(name: str, key: str, token: str, kdf: encryption.KdfParams, wrapped: str,
                      state_dir: str | None = None) -> str:
    lines = [
        "# exmo-signing-proxy config, written by `exmo-proxy init`. Every key: config.example.yaml.",
        f"listen: {DEFAULT_LISTEN}            # or unix:/run/exmo-proxy/proxy.sock",
        f"upstream: {DEFAULT_UPSTREAM}",
        *([f"state_dir: {state_dir}   # nonce state; relative to this file"] if state_dir else [
            "# state_dir: /var/lib/exmo-proxy   # nonce state. Default: $STATE_DIRECTORY (systemd),"
            " else exmo-proxy-state/ beside this file"]),
        "accounts:",
        *("  " + line for line in account_lines(name, key, token)),
        "limits:",
        "  rate_per_second: 10          # EXMO: 10 requests/s per IP or user",
        "  upstream_timeout_s: 15",
        *encryption_lines(kdf, wrapped),
    ]
    return "\n".join(lines) + "\n"


def new_config_text(name: str, key: str, secret: Secret, passphrase: Secret,
                    state_dir: str | None = None) -> str:
    data_key = encryption.new_data_key()
    kdf = encryption.KdfParams.fresh()
    wrapped = encryption.wrap_data_key(data_key, passphrase.encode(), kdf)
    token = encryption.encrypt_value(data_key, secret_path(name), secret.reveal())
    return render_new_config(name, key, token, kdf, wrapped, state_dir)
