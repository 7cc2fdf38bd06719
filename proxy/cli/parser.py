"""The `exmo-proxy` argument parser: every command, flag and help text (SPEC §2)."""

from __future__ import annotations

import argparse

from proxy import __version__


def _common() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", default=argparse.SUPPRESS,
                        help="config file (default: $EXMO_PROXY_CONFIG, else ./exmo-proxy.yaml)")
    common.add_argument("--passphrase-file", default=argparse.SUPPRESS, metavar="PATH",
                        help="file holding the passphrase (or set EXMO_PROXY_PASSPHRASE_FILE)")
    return common


def build_parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(prog="exmo-proxy", parents=[common],
                                     description="Local signing proxy for the EXMO API.")
    parser.add_argument("--version", action="version", version=f"exmo-proxy {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", parents=[common], help="create a new encrypted config with one account")
    p.add_argument("--account", default="main", metavar="NAME")
    p.add_argument("--from-stdin", action="store_true", help="read the key line, then the secret line")

    account = sub.add_parser("account", parents=[common], help="manage accounts")
    acc = account.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action in ("add", "set-secret"):
        a = acc.add_parser(action, parents=[common])
        a.add_argument("name", metavar="NAME")
        a.add_argument("--from-stdin", action="store_true")
        if action == "set-secret":
            a.add_argument("--key", help="also replace the public key (for a rotated key pair)")
    acc.add_parser("remove", parents=[common]).add_argument("name", metavar="NAME")
    acc.add_parser("list", parents=[common])

    client = sub.add_parser("client", parents=[common], help="manage client tokens")
    cl = client.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = cl.add_parser("add", parents=[common], help="new client; prints its token once")
    add.add_argument("name", metavar="NAME")
    add.add_argument("--account", action="append", required=True, dest="accounts", metavar="ACCOUNT",
                     help="an account this client may use (repeat for more)")
    add.add_argument("--allow", nargs="+", default=[], metavar="METHOD",
                     help="only these methods (money-out methods must be listed to be allowed)")
    cl.add_parser("remove", parents=[common]).add_argument("name", metavar="NAME")
    cl.add_parser("list", parents=[common])

    stop = sub.add_parser("halt", parents=[common], help="kill switch: refuse new orders and withdrawals")
    stop.add_argument("state", nargs="?", choices=["on", "off", "status"], default="status")
    stop.add_argument("--reason", default="", help="a note kept with the halt")

    audit = sub.add_parser("audit", parents=[common], help="read the audit log of signed calls")
    au = audit.add_subparsers(dest="action", required=True, metavar="ACTION")
    au.add_parser("tail", parents=[common], help="the last N entries").add_argument(
        "-n", type=int, default=20, metavar="N")
    find = au.add_parser("grep", parents=[common], help="entries matching every filter given")
    for flag in ("--account", "--method", "--client", "--text", "--since"):
        find.add_argument(flag, help="ISO time, e.g. 2026-11-24T10:00" if flag == "--since" else None)
    for p in (au.choices["tail"], find):
        p.add_argument("--json", action="store_true", help="print the raw JSON lines")
    for p in (stop, au.choices["tail"], find):
        p.add_argument("--state-dir", help="the daemon's state_dir, if it runs with --state-dir")

    shared = sub.add_parser("redis", parents=[common], help="Redis shared by several daemons (SPEC §10)")
    password = shared.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "password", parents=[common], help="store the Redis password sealed in the config")
    password.add_argument("--from-stdin", action="store_true", help="read the password line from stdin")

    paper = sub.add_parser("paper", parents=[common], help="the paper trading ledger (run --paper)")
    pp = paper.add_subparsers(dest="action", required=True, metavar="ACTION")
    for action, text in (("show", "balances, open orders and trades of paper accounts"),
                         ("reset", "start paper accounts over with the configured balances")):
        a = pp.add_parser(action, parents=[common], help=text)
        a.add_argument("accounts", nargs="*", metavar="ACCOUNT", help="these accounts (default: all)")
        a.add_argument("--state-dir", help="the daemon's state_dir, if it runs with --state-dir")
        if action == "show":
            a.add_argument("--json", action="store_true", help="print JSON")

    phrase = sub.add_parser("passphrase", parents=[common], help="change the passphrase")
    change = phrase.add_subparsers(dest="action", required=True, metavar="ACTION").add_parser(
        "change", parents=[common])
    change.add_argument("--new-passphrase-file", metavar="PATH",
                        help="read the new passphrase from this file instead of prompting")

    check = sub.add_parser("check", parents=[common], help="load, decrypt and validate the config")
    run = sub.add_parser("run", parents=[common], help="run the daemon")
    for p in (check, run):
        p.add_argument("--listen", help="HOST:PORT or unix:PATH (overrides the file)")
        p.add_argument("--upstream", help="EXMO base URL (overrides the file)")
        p.add_argument("--ws-upstream", help="EXMO's WebSocket base URL (overrides the file)")
        p.add_argument("--redis-url", help="Redis shared by several daemons (overrides redis.url); no"
                                           " password here: `exmo-proxy redis password`")
        p.add_argument("--state-dir", help="state directory (overrides the file)")
        p.add_argument("--paper", action="store_true", help="paper-trade every account: private calls are"
                                                            " answered from a local ledger, never sent")

    sim = sub.add_parser("simulator", parents=[common], help="run a local EXMO-compatible exchange")
    sim.add_argument("--listen", default="127.0.0.1:8081")
    sim.add_argument("--accounts", metavar="FILE", help="YAML mapping of API key to secret")
    sim.add_argument("--delay-ms", type=int, default=0, help="random processing delay up to N ms")
    sim.add_argument("--rate-limit", type=int, default=10, help="requests/s per key and IP (0: off)")
    sim.add_argument("--rate-limit-style", choices=["40034", "retry_after"], default="40034",
                     help="which of EXMO's two rate-limit answers to give")
    sim.add_argument("--seed", type=int)

    demo = sub.add_parser("demo", parents=[common], help="simulator + proxy with a throwaway config")
    demo.add_argument("--listen", default="127.0.0.1:8080")
    demo.add_argument("--simulator-listen", default="127.0.0.1:8081")
    demo.add_argument("--paper", action="store_true", help="paper-trade on the simulator's prices")

    health = sub.add_parser("health", parents=[common], help="exit 0 iff the daemon's /healthz answers 200")
    health.add_argument("--url", help="http://HOST:PORT or unix:PATH (default: the config's listen)")
    return parser
