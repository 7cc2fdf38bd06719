"""The table of signed methods (exmo-api.md §2.2 and §2.3) and how one is executed.

Only ``pipeline.py`` calls ``execute``, after the key, signature, rate and nonce checks passed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from proxy.exchange import orders as engine
from proxy.exchange import reports
from proxy.exchange.params import Params
from proxy.simulator import funds, orders
from proxy.simulator.margin import MARGIN
from proxy.simulator.state import Account, Exchange

PrivateAnswer = Callable[[Exchange, Account, Params], Any]

PRIVATE: Mapping[str, PrivateAnswer] = {
    "user_info": reports.user_info,
    "order_create": engine.order_create,
    "order_cancel": engine.order_cancel,
    "stop_market_order_create": orders.stop_market_order_create,
    "stop_market_order_cancel": orders.stop_market_order_cancel,
    "user_open_orders": reports.user_open_orders,
    "user_trades": reports.user_trades,
    "user_cancelled_orders": reports.user_cancelled_orders,
    "order_trades": reports.order_trades,
    "deposit_address": funds.deposit_address,
    "withdraw_crypt": funds.withdraw_crypt,
    "withdraw_get_txid": funds.withdraw_get_txid,
    "excode_create": funds.excode_create,
    "excode_load": funds.excode_load,
    "code_check": funds.code_check,
    "wallet_history": funds.wallet_history,
    "wallet_operations": funds.wallet_operations,
    **MARGIN,
}


def execute(ex: Exchange, key: str, method: str, params: Params) -> Any:
    """Run ``method`` for the account of ``key`` (both already checked by the pipeline)."""
    return PRIVATE[method](ex, ex.accounts[key], params)
