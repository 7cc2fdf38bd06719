"""`main()`: run the command the parser (parser.py) chose, with the right exit code (SPEC §2).

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

from proxy.calls.nonce_store import NonceStateError
from proxy.cli import accounts, clients, coordination, paper, passphrase, state
from proxy.cli.console import Console
from proxy.cli.parser import build_parser
from proxy.config.addresses import Listen
from proxy.config.checks import ConfigError
from proxy.config.load import assemble, default_config_path, load_config, read_config, unsealing
from proxy.config.model import DEFAULT_LISTEN, validate
from proxy.config.yamlfile import read_document
from proxy.telemetry import logs
from proxy.vault.encryption import UnlockError, ValueAuthError
from proxy.vault.hardening import protect_process
from proxy.vault.passphrase import PassphraseError, PassphraseSources

log = logging.getLogger("proxy")

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_LOCKED, EXIT_TAMPERED = 0, 1, 2, 3, 4


def _config_path(args: argparse.Namespace) -> Path:
    return Path(getattr(args, "config", None) or default_config_path())


def _sources(args: argparse.Namespace) -> PassphraseSources:
    return PassphraseSources(explicit=getattr(args, "passphrase_file", None))


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    state_dir = str(Path(args.state_dir).resolve()) if args.state_dir else None  # relative to the cwd
    pairs = {"listen": args.listen, "upstream": args.upstream, "ws_upstream": args.ws_upstream,
             "redis_url": args.redis_url, "state_dir": state_dir,
             "paper": "all" if getattr(args, "paper", False) else None}
    return {k: v for k, v in pairs.items() if v is not None}


def _configure_logging(level: str = "info", fmt: str = "text") -> None:
    logs.configure(level, fmt)


def _run(args: argparse.Namespace) -> int:
    _configure_logging()
    protect_process(log)  # before any secret is decrypted into this process's memory
    path, overrides = _config_path(args), _overrides(args)
    document = read_config(path, overrides)
    unlocking = unsealing(document, _sources(args).get())  # the KDF runs in a child meanwhile
    from proxy.ops.server import loop_runner, serve  # the heavy imports, while the child works

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
    from proxy.cli.demo import run_demo

    _configure_logging()
    protect_process(log)
    asyncio.run(run_demo(Listen.parse(args.listen), Listen.parse(args.simulator_listen), args.paper))
    return EXIT_OK


def _health(args: argparse.Namespace) -> int:
    from proxy.ops.health import health_check

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
            accounts.init(path, args.account, _sources(args), console)
        case ("account", "add"):
            accounts.account_add(path, args.name, _sources(args), console)
        case ("account", "remove"):
            accounts.account_remove(path, args.name, console)
        case ("account", "list"):
            accounts.account_list(path, console)
        case ("account", "set-secret"):
            accounts.account_set_secret(path, args.name, args.key, _sources(args), console)
        case ("client", "add"):
            clients.client_add(path, args.name, args.accounts, args.allow, console)
        case ("client", "remove"):
            clients.client_remove(path, args.name, console)
        case ("client", "list"):
            clients.client_list(path, console)
        case ("audit", str(action)):
            state_dir = state.resolve_state_dir(path, args.state_dir)
            state.audit_command(state_dir, action, vars(args), console)
        case ("halt", _):
            state_dir = state.resolve_state_dir(path, args.state_dir)
            state.halt_command(path, args.state, args.reason, state_dir, _sources(args), console)
        case ("paper", str(action)):
            state_dir = state.resolve_state_dir(path, args.state_dir)
            settings = validate(read_document(path), path).paper
            paper.paper_command(state_dir, settings, action, args.accounts, getattr(args, "json", False),
                                console)
        case ("redis", "password"):
            coordination.redis_password(path, _sources(args), console)
        case ("passphrase", "change"):
            passphrase.passphrase_change(path, _sources(args), args.new_passphrase_file, console)
        case ("check", _):
            accounts.check(path, _sources(args), _overrides(args), console)
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
    except UnlockError as exc:
        return _fail(EXIT_LOCKED, str(exc))
    except ValueAuthError as exc:
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
