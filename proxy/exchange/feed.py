"""EXMO's private WebSocket topics from an account (exmo-api.md §6): `spot/wallet`, `spot/orders`,
`spot/user_trades` — a snapshot when subscribed, then what changed.

One `AccountFeed` per socket remembers what it last sent and compares the account with it: orders
opened, and closed (executed or cancelled); balances changed; trades added. Data shapes are EXMO's as
ccxt.pro's exmo parser documents them. The simulator's sockets and paper mode's both use it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from proxy.exchange.ledger import Account, Order, Trade
from proxy.exchange.money import num

TOPICS = ("spot/wallet", "spot/orders", "spot/user_trades")
NOT_A_COMMAND = (201006, "invalid command format. should be JSON")  # the error frame's code, text


def command(text: str) -> dict[str, Any] | None:
    """A client's frame: a JSON object, or None (answered with NOT_A_COMMAND)."""
    try:
        frame = json.loads(text)
    except ValueError:
        return None
    return frame if isinstance(frame, dict) else None


class AccountFeed:
    def __init__(self) -> None:
        self._orders: dict[int, dict[str, str]] = {}
        self._wallet: dict[str, tuple[str, str]] = {}
        self._trades = 0

    def snapshot(self, topic: str, account: Account) -> Any:
        """The topic's snapshot (and the starting point of its changes)."""
        if topic == "spot/wallet":
            self._wallet = _balances(account)
            return {"balances": {c: f for c, (f, _) in self._wallet.items()},
                    "reserved": {c: r for c, (_, r) in self._wallet.items()}}
        if topic == "spot/orders":
            self._orders = _open_orders(account)
            return list(self._orders.values())
        self._trades = len(account.trades)  # spot/user_trades: its snapshot is empty
        return []

    def changes(self, topics: set[str], account: Account) -> list[tuple[str, Any]]:
        """(topic, data) updates for what changed since the last snapshot or changes."""
        frames: list[tuple[str, Any]] = []
        if "spot/orders" in topics:
            frames += [("spot/orders", row) for row in self._order_changes(account)]
        if "spot/wallet" in topics:
            now = _balances(account)
            frames += [("spot/wallet", {"currency": cur, "balance": free, "reserved": reserved})
                       for cur, (free, reserved) in now.items() if self._wallet.get(cur) != (free, reserved)]
            self._wallet = now
        if "spot/user_trades" in topics:
            frames += [("spot/user_trades", trade_frame(t)) for t in account.trades[self._trades:]]
            self._trades = len(account.trades)
        return frames

    def _order_changes(self, account: Account) -> list[dict[str, str]]:
        now = _open_orders(account)
        cancelled = {order.order_id for _, order in account.cancelled}
        rows = [row for order_id, row in now.items() if order_id not in self._orders]
        for order_id, row in self._orders.items():
            if order_id not in now:
                rows.append({**row, "status": "cancelled" if order_id in cancelled else "executed"})
        self._orders = now
        return rows


def trade_frame(trade: Trade) -> dict[str, Any]:
    return {"trade_id": trade.trade_id, "type": trade.type, "price": num(trade.price),
            "quantity": num(trade.quantity), "amount": num(trade.amount), "date": trade.date,
            "order_id": trade.order_id, "client_id": trade.client_id, "pair": trade.pair.name,
            "exec_type": trade.exec_type, "commission_amount": num(trade.commission),
            "commission_currency": trade.commission_currency,
            "commission_percent": num(trade.commission_percent)}


def _balances(account: Account) -> dict[str, tuple[str, str]]:
    wallet = account.wallet
    return {cur: (num(free), num(wallet.reserved.get(cur, Decimal(0)))) for cur, free in wallet.free.items()}


def _open_orders(account: Account) -> dict[int, dict[str, str]]:
    return {order.order_id: order_row(order) for order in account.orders.values()}


def order_row(order: Order) -> dict[str, str]:
    quantity, amount = num(order.quantity), num(order.amount)
    return {"order_id": str(order.order_id), "client_id": str(order.client_id), "created": str(order.created),
            "pair": order.pair.name, "price": num(order.price), "quantity": quantity, "amount": amount,
            "original_quantity": quantity, "original_amount": amount, "type": order.type, "status": "open"}
