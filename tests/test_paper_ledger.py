"""The paper ledger (proxy/paper/ledger.py): what it keeps survives a reopen exactly; a change the disk
refuses changes nothing, on disk or in memory; reset starts an account over."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest

from proxy.exchange.ledger import Account
from proxy.exchange.orders import cross, order_cancel, order_create
from proxy.paper.ledger import LedgerError, PaperLedger, clone
from tests.test_exchange_engine import BOOK, RULES, FixedVenue

D = Decimal
START = {"USDT": D(10000), "USD": D(10000)}


def _view(account: Account) -> tuple[object, ...]:
    return (account.uid, account.wallet.free, account.wallet.reserved,
            {i: (o.quantity, o.price, o.reserved, o.type, o.pair) for i, o in account.orders.items()},
            [(at, o.order_id, o.quantity) for at, o in account.cancelled],
            account.trades)


def _ledger(tmp_path: Path) -> PaperLedger:
    ledger = PaperLedger(tmp_path, START)
    ledger.open()
    return ledger


def _change(ledger: PaperLedger, venue: FixedVenue, name: str, **params: str) -> dict[str, object]:
    before = ledger.account(name, venue.now())
    after = clone(before)
    if "order_id" in params:
        answer = order_cancel(venue, after, params)
    else:
        answer = order_create(venue, after, {"pair": "BTC_USDT", **params})
    ledger.commit(name, before, after)
    return answer


class LedgerVenue(FixedVenue):
    def __init__(self, ledger: PaperLedger) -> None:
        super().__init__()
        self.next_id = ledger.next_id  # type: ignore[method-assign]


def test_what_the_ledger_keeps_survives_a_reopen(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    venue = LedgerVenue(ledger)
    _change(ledger, venue, "main", quantity="2", type="market_buy")
    resting = _change(ledger, venue, "main", quantity="1.5", price="95", type="buy")
    cancelled = _change(ledger, venue, "main", quantity="1", price="90", type="buy")
    _change(ledger, venue, "main", order_id=str(cancelled["order_id"]))
    before = ledger.accounts["main"]
    after = clone(before)
    cross(venue, after, RULES, type(BOOK)(asks=((D(94), D("0.5")),), bids=()))  # a partial maker fill
    ledger.commit("main", before, after)
    _change(ledger, venue, "other", quantity="1", type="market_buy")
    kept = {name: _view(account) for name, account in ledger.accounts.items()}
    ledger.close()

    again = _ledger(tmp_path)
    assert {name: _view(account) for name, account in again.accounts.items()} == kept
    assert again.accounts["main"].orders[int(str(resting["order_id"]))].quantity == D(1)
    assert again.next_id() > max(t.trade_id for t in again.accounts["main"].trades)
    assert oct((tmp_path / "paper.sqlite3").stat().st_mode & 0o777) == "0o600"


def test_a_change_the_disk_refuses_changes_nothing(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    venue = LedgerVenue(ledger)
    _change(ledger, venue, "main", quantity="1", type="market_buy")
    kept = _view(ledger.accounts["main"])
    db = sqlite3.connect(tmp_path / "paper.sqlite3")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.close()
    assert ledger._db is not None
    ledger._db.execute(f"PRAGMA max_page_count = {pages}")  # the file may not grow: SQLITE_FULL
    with pytest.raises(LedgerError, match="cannot be written"):
        for _ in range(200):  # until a page must be added
            _change(ledger, venue, "main", quantity="0.01", price="90", type="buy")
    refused_at = _view(ledger.accounts["main"])
    ledger.close()
    assert _view(_ledger(tmp_path).accounts["main"]) == refused_at  # memory and disk agree
    assert kept != refused_at  # (the writes before the disk filled up were kept)


def test_reset_starts_an_account_over(tmp_path: Path) -> None:
    ledger = _ledger(tmp_path)
    venue = LedgerVenue(ledger)
    _change(ledger, venue, "main", quantity="1", type="market_buy")
    assert ledger.reset("main") is True
    assert ledger.reset("main") is False
    fresh = ledger.account("main", venue.now())
    assert (fresh.wallet.free, fresh.trades, fresh.orders) == (START, [], {})
    ledger.close()
    assert _ledger(tmp_path).accounts["main"].wallet.free == START
