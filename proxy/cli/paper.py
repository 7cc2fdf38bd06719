"""`exmo-proxy paper show|reset`: the paper ledger in a daemon's state_dir (SPEC §11). No passphrase.

`show` reads what the ledger holds (also while the daemon runs: SQLite lets a reader in beside it).
`reset` starts accounts over with the configured balances; it refuses while a daemon runs on that
state_dir, which would keep trading on what it has in memory.
"""

from __future__ import annotations

import datetime
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from proxy.calls import nonce_store
from proxy.cli.console import Console
from proxy.config.checks import ConfigError
from proxy.config.paper import PaperSettings
from proxy.exchange.ledger import Account
from proxy.exchange.money import num
from proxy.paper.ledger import FILE, LedgerError, PaperLedger


def paper_command(state_dir: Path, settings: PaperSettings, action: str, accounts: list[str], as_json: bool,
                  console: Console) -> None:
    if not (state_dir / FILE).exists():
        console.out(f"no paper trading yet in {state_dir} (a paper account's first call starts it)")
        return
    if action == "reset" and nonce_store.in_use(state_dir):
        raise ConfigError(f"a daemon runs on {state_dir}: stop it first (it keeps the paper ledger in"
                          " memory)")
    ledger = PaperLedger(state_dir, settings.balances)
    try:
        ledger.open()
        names = accounts or sorted(ledger.accounts)
        if not names:
            console.out(f"no paper accounts in {state_dir}")
            return
        unknown = [n for n in names if n not in ledger.accounts]
        if unknown:
            raise ConfigError(f"no paper account named {', '.join(unknown)} in {state_dir}")
        if action == "reset":
            for name in names:
                ledger.reset(name)
                console.out(f"paper account {name}: started over (its next call gets the configured"
                            " balances)")
            return
        shown = {name: _summary(ledger.accounts[name]) for name in names}
    except LedgerError as exc:
        raise ConfigError(str(exc)) from None
    finally:
        ledger.close()
    if as_json:
        console.out(json.dumps(shown, indent=2))
        return
    for name, summary in shown.items():
        console.out(_text(name, summary))


def _summary(account: Account) -> dict[str, Any]:
    wallet = account.wallet
    return {
        "balances": {c: num(v) for c, v in sorted(wallet.free.items()) if v or wallet.reserved.get(c)},
        "reserved": {c: num(v) for c, v in sorted(wallet.reserved.items()) if v},
        "open_orders": [{"order_id": o.order_id, "pair": o.pair.name, "type": o.type,
                         "quantity": num(o.quantity), "price": num(o.price)}
                        for o in account.orders.values()],
        "trades": len(account.trades),
        "fees": {c: num(v) for c, v in sorted(_fees(account).items())},
        "last_trade": _when(account.trades[-1].date) if account.trades else None,
    }


def _fees(account: Account) -> dict[str, Decimal]:
    paid: dict[str, Decimal] = {}
    for trade in account.trades:
        paid[trade.commission_currency] = paid.get(trade.commission_currency, Decimal(0)) + trade.commission
    return paid


def _when(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _text(name: str, s: dict[str, Any]) -> str:
    lines = [f"paper account {name}:",
             "  balances: " + (", ".join(f"{c} {v}" for c, v in s["balances"].items()) or "none")]
    if s["reserved"]:
        lines.append("  reserved by open orders: " + ", ".join(f"{c} {v}" for c, v in s["reserved"].items()))
    for order in s["open_orders"]:
        lines.append(f"  open: {order['order_id']} {order['type']} {order['quantity']} {order['pair']}"
                     f" at {order['price']}")
    fees = ", ".join(f"{c} {v}" for c, v in s["fees"].items()) or "none"
    lines.append(f"  trades: {s['trades']} (fees paid: {fees}; last {s['last_trade'] or '-'})")
    return "\n".join(lines)
