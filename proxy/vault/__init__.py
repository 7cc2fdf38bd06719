"""Where secrets live: the passphrase's sources, `enc:v1:` values under an Argon2id-wrapped data key,
the `Secret` wrapper that never prints, the unseal child, and process hardening (SPEC §3, §4, §6)."""
