"""The config file: one frozen model, loading and validation, comment-keeping edits, accounts, client
scopes and addresses (SPEC §4). Problems are a `ConfigError` naming the dotted key."""
