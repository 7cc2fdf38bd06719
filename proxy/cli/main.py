"""The `exmo-proxy` command line: argument parsing and wiring only (SPEC §2).

Exit codes: 0 ok; 2 usage or invalid config; 3 cannot unlock; 4 a value failed authentication;
1 anything else. A user mistake prints one line naming the problem, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from proxy import __version__, logs, manage, manage_clients, manage_state, vault
from proxy.config import (
    DEFAULT_LISTEN,
    Listen,
    assemble,
    default_config_path,
    load_config,
    read_config,
    unsealing,
)
from proxy.console import Console
from proxy.credentials import PassphraseError, PassphraseSources
from proxy.hardening import protect_process
from proxy.nonce import NonceStateError
from proxy.yamlfile import ConfigError, read_document

log = logging.getLogger("proxy")

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_LOCKED, EXIT_TAMPERED = 0, 1, 2, 3, 4


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
        p.add_argument("--state-dir", help="state directory (overrides the file)")

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

    health = sub.add_parser("health", parents=[common], help="exit 0 iff the daemon's /healthz answers 200")
    health.add_argument("--url", help="http://HOST:PORT or unix:PATH (default: the config's listen)")
    return parser


def _config_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "config", None) or default_config_path())


def _sources(args: argparse.Namespace) -> PassphraseSources:
    return PassphraseSources(explicit=getattr(args, "passphrase_file", None))


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    state_dir = str(Path(args.state_dir).resolve()) if args.state_dir else None  # relative to the cwd
    pairs = {"listen": args.listen, "upstream": args.upstream, "state_dir": state_dir}
    return {k: v for k, v in pairs.items() if v is not None}


def _configure_logging(level: str = "info", fmt: str = "text") -> None:
    logs.configure(level, fmt)


def _run(args: argparse.Namespace) -> int:
    _configure_logging()
    protect_process(log)  # before any secret is decrypted into this process's memory
    path, overrides = _config_path(args), _overrides(args)
    document = read_config(path, overrides)
    unlocking = unsealing(document, _sources(args).get())  # the KDF runs in a child meanwhile
    from proxy.server import loop_runner, serve  # the heavy imports, while the child works

    config = assemble(document, unlocking.result())
    _configure_logging(config.log_level, config.log_format)
    # SIGHUP reads the passphrase again from a file source; a daemon cannot answer a prompt.
    quiet = PassphraseSources(explicit=getattr(args, "passphrase_file", None), is_tty=lambda: False)
    try:
        run_loop = loop_runner(config.features.event_loop)
        run_loop(serve(config, reloader=lambda: load_config(path, quiet, overrides, isolated=True)))
    except OSError as exc:
        print(f"exmo-proxy: error: cannot listen on {config.listen.url()}: {exc.strerror or exc}",
              file=sys.stderr)
        return EXIT_OTHER
    return EXIT_OK


def _simulator(args: argparse.Namespace) -> int:
    from proxy import simulator

    listen = Listen.parse(args.listen)
    accounts = simulator.load_accounts_file(args.accounts) if args.accounts else {
        simulator.DEMO_KEY: simulator.DEMO_SECRET}
    config = simulator.SimulatorConfig(accounts=accounts, delay_ms=args.delay_ms,
                                       rate_limit=args.rate_limit, seed=args.seed,
                                       rate_limit_style=args.rate_limit_style)
    _configure_logging()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(simulator.serve_simulator(config, listen.host, listen.port))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from proxy.demo import run_demo

    _configure_logging()
    protect_process(log)
    asyncio.run(run_demo(Listen.parse(args.listen), Listen.parse(args.simulator_listen)))
    return EXIT_OK


def _health(args: argparse.Namespace) -> int:
    from proxy.server import health_check

    target = args.url
    if target is None:
        try:
            listen = read_document(_config_path(args)).get("listen", DEFAULT_LISTEN)
            target = Listen.parse(str(listen)).url()
        except (ConfigError, ValueError):
            target = "http://127.0.0.1:8080"
    ok, what = health_check(target)
    print(("healthy: " if ok else "unhealthy: ") + what, file=sys.stdout if ok else sys.stderr)
    return EXIT_OK if ok else EXIT_OTHER


def _dispatch(args: argparse.Namespace) -> int:
    path, console = _config_path(args), Console(from_stdin=getattr(args, "from_stdin", False))
    match (args.command, getattr(args, "action", None)):
        case ("init", _):
            manage.init(path, args.account, _sources(args), console)
        case ("account", "add"):
            manage.account_add(path, args.name, _sources(args), console)
        case ("account", "remove"):
            manage.account_remove(path, args.name, console)
        case ("account", "list"):
            manage.account_list(path, console)
        case ("account", "set-secret"):
            manage.account_set_secret(path, args.name, args.key, _sources(args), console)
        case ("client", "add"):
            manage_clients.client_add(path, args.name, args.accounts, args.allow, console)
        case ("client", "remove"):
            manage_clients.client_remove(path, args.name, console)
        case ("client", "list"):
            manage_clients.client_list(path, console)
        case ("audit", str(action)):
            state_dir = manage_state.resolve_state_dir(path, args.state_dir)
            manage_state.audit_command(state_dir, action, vars(args), console)
        case ("halt", _):
            state_dir = manage_state.resolve_state_dir(path, args.state_dir)
            manage_state.halt_command(path, args.state, args.reason, state_dir, console)
        case ("passphrase", "change"):
            manage.passphrase_change(path, _sources(args), args.new_passphrase_file, console)
        case ("check", _):
            manage.check(path, _sources(args), _overrides(args), console)
        case ("run", _):
            return _run(args)
        case ("simulator", _):
            return _simulator(args)
        case ("demo", _):
            return _demo(args)
        case ("health", _):
            return _health(args)
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return _dispatch(args)
    except (ConfigError, PassphraseError, ValueError) as exc:
        return _fail(EXIT_USAGE, str(exc))
    except vault.UnlockError as exc:
        return _fail(EXIT_LOCKED, str(exc))
    except vault.ValueAuthError as exc:
        return _fail(EXIT_TAMPERED, str(exc))
    except NonceStateError as exc:
        return _fail(EXIT_OTHER, str(exc))
    except KeyboardInterrupt:
        return _fail(EXIT_OTHER, "interrupted")
    except OSError as exc:
        return _fail(EXIT_OTHER, f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""))


def _fail(code: int, message: str) -> int:
    print(f"exmo-proxy: error: {message}", file=sys.stderr)
    return code
