"""The `exmo-proxy` command line: `main()`, the parser, and the commands split by what they act on
(accounts, clients, halt and audit, passphrase, demo)."""
