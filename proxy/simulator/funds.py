"""Wallet and EX-CODE methods: deposits, withdrawals, vouchers and the wallet history.

Withdrawals and EX-CODEs move value out (exmo-api.md §2.4); here they only move simulated
balances. Answer shapes: exmo-api.md §4.2 and ccxt's ``parse_transaction`` samples.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from typing import Any

from proxy.exchange import errors
from proxy.exchange import params as p
from proxy.exchange.params import Params
from proxy.simulator import market
from proxy.simulator.market import num
from proxy.simulator.state import Account, Exchange, Excode, Operation

DAY = 86400


def _currency(params: Params) -> str:
    cur = p.require(params, "currency").upper()
    if cur not in market.CURRENCIES:
        raise errors.invalid_value("currency")
    return cur


def _txid(task_id: int) -> str:
    return hashlib.sha256(f"simulated-{task_id}".encode()).hexdigest()


def deposit_address(ex: Exchange, acct: Account, params: Params) -> dict[str, str]:
    """Currency → address (a memo would follow a comma); obviously fake addresses."""
    return {cur: f"SIMULATED-{cur}-ADDRESS-{acct.uid}" for cur in market.CRYPTO}


def _take(acct: Account, params: Params) -> tuple[str, Decimal]:
    amount = p.decimal(params, "amount")
    if amount <= 0:
        raise errors.invalid_value("amount")
    cur = _currency(params)
    acct.wallet.debit(cur, amount)
    return cur, amount


def withdraw_crypt(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """``{"result":true,"error":"","task_id":…}`` and the balance goes down (§2.2, §4.2)."""
    p.require(params, "amount")
    p.require(params, "currency")
    address = p.require(params, "address")
    cur, amount = _take(acct, params)
    task_id = ex.next_id()
    provider = params.get("transport") or cur
    acct.operations.append(Operation(task_id, ex.now(), "withdraw", cur, amount, provider,
                                     address, _txid(task_id)))
    return {"result": True, "error": "", "task_id": task_id}


def withdraw_get_txid(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    raw = p.require(params, "task_id")
    found = [op for op in acct.operations if str(op.task_id) == raw and op.provider != "EXCODE"]
    txid = found[0].txid if found else ""
    return {"result": True, "error": "", "status": bool(found), "txid": txid}


def excode_create(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """A bearer voucher; the code string is in the answer (§2.2, §4.2)."""
    cur, amount = _take(acct, params)
    task_id = ex.next_id()
    code = f"EX-CODE_{task_id}_{cur}{_txid(task_id)[:32]}"
    ex.excodes[code] = Excode(code, task_id, cur, amount)
    acct.operations.append(Operation(task_id, ex.now(), "withdraw", cur, amount, "EXCODE", code, ""))
    return {"result": True, "error": "", "task_id": str(task_id), "code": code,
            "amount": num(amount), "currency": cur, "login": params.get("login", ""),
            "commission": "0.00",
            "balances": {c: num(v) for c, v in acct.wallet.free.items()}}


def _excode(ex: Exchange, params: Params) -> Excode:
    found = ex.excodes.get(p.require(params, "code"))
    if found is None:
        raise errors.invalid_value("code")
    return found


def excode_load(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    voucher = _excode(ex, params)
    if voucher.loaded:
        raise errors.invalid_value("code")
    voucher.loaded = True
    acct.wallet.credit(voucher.currency, voucher.amount)
    acct.operations.append(Operation(voucher.task_id, ex.now(), "deposit", voucher.currency,
                                     voucher.amount, "EXCODE", voucher.code, ""))
    return {"result": True, "error": "", "task_id": str(voucher.task_id),
            "amount": num(voucher.amount), "currency": voucher.currency}


def code_check(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """[INF] shape: the voucher's amount, currency and whether it was loaded."""
    voucher = _excode(ex, params)
    return {"result": True, "error": "", "code": voucher.code, "amount": num(voucher.amount),
            "currency": voucher.currency, "status": "loaded" if voucher.loaded else "active"}


def _signed(op: Operation) -> str:
    return num(-op.amount if op.type == "withdraw" else op.amount)


def wallet_history(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """One UTC day of operations, the current day by default (§2.2, §4.2)."""
    begin = p.integer(params, "date", ex.now()) // DAY * DAY
    ops = [op for op in acct.operations if begin <= op.created < begin + DAY]
    history = [{"dt": op.created, "type": "withdrawal" if op.type == "withdraw" else op.type,
                "curr": op.currency, "status": "paid", "provider": op.provider,
                "amount": _signed(op), "account": op.account, "txid": op.txid} for op in ops]
    return {"result": True, "error": "", "begin": str(begin), "end": str(begin + DAY),
            "history": history}


def _item(op: Operation) -> dict[str, Any]:
    return {"operation_id": op.task_id, "created": op.created, "updated": op.created,
            "type": op.type, "currency": op.currency, "status": "Paid", "amount": num(op.amount),
            "provider": op.provider, "commission": "0", "account": f"{op.currency}: {op.account}",
            "order_id": op.task_id,
            "extra": {"txid": op.txid, "excode": op.account if op.provider == "EXCODE" else "",
                      "invoice": ""},
            "error": ""}


def wallet_operations(ex: Exchange, acct: Account, params: Params) -> dict[str, Any]:
    """``{"items":[…],"count":n}`` filtered by currency/type/order_id (§2.2)."""
    offset, limit = p.page(params)
    filters = {"currency": params.get("currency", "").upper(), "type": params.get("type", ""),
               "order_id": params.get("order_id", "")}
    items = [_item(op) for op in reversed(acct.operations)]
    items = [i for i in items if all(not v or str(i[k]) == v for k, v in filters.items())]
    return {"items": items[offset:offset + limit], "count": len(items)}
