"""The paper ledger: every paper account's balances, open orders, cancelled orders and trades, on disk.

SQLite (the standard library's, in WAL mode with `synchronous=FULL`) in `state_dir/paper.sqlite3`:
each change to an account is one transaction, committed before the call is answered, so kill -9 loses
no fill, and a full disk refuses the change (the call is answered 503 and the account in memory is
left as it was; `apply`). Amounts are stored as decimal text, exactly. Accounts live in memory as the
engine's (proxy/exchange/ledger.py); `commit` writes what changed between a copy and the original.
Open orders keep the pair's rules they were placed under, so a restart needs no market data.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

from proxy.exchange.ledger import Account, Order, Trade, Wallet
from proxy.exchange.rules import PairRules

FILE = "paper.sqlite3"
FIRST_ID = 70000000001  # paper ids, 11 digits like EXMO's, in a range of their own
FIRST_UID = 700001

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (name TEXT PRIMARY KEY, uid INTEGER NOT NULL, started INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS balances (account TEXT NOT NULL, currency TEXT NOT NULL, free TEXT NOT NULL,
    reserved TEXT NOT NULL, PRIMARY KEY (account, currency));
CREATE TABLE IF NOT EXISTS orders (order_id INTEGER PRIMARY KEY, account TEXT NOT NULL,
    client_id INTEGER NOT NULL, created INTEGER NOT NULL, type TEXT NOT NULL, rules TEXT NOT NULL,
    quantity TEXT NOT NULL, price TEXT NOT NULL, reserved TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cancelled (seq INTEGER PRIMARY KEY AUTOINCREMENT, account TEXT NOT NULL,
    at INTEGER NOT NULL, order_id INTEGER NOT NULL, client_id INTEGER NOT NULL, created INTEGER NOT NULL,
    type TEXT NOT NULL, rules TEXT NOT NULL, quantity TEXT NOT NULL, price TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trades (trade_id INTEGER PRIMARY KEY, account TEXT NOT NULL, date INTEGER NOT NULL,
    type TEXT NOT NULL, order_id INTEGER NOT NULL, client_id INTEGER NOT NULL, rules TEXT NOT NULL,
    quantity TEXT NOT NULL, price TEXT NOT NULL, amount TEXT NOT NULL, commission TEXT NOT NULL,
    commission_currency TEXT NOT NULL, commission_percent TEXT NOT NULL, exec_type TEXT NOT NULL);
"""


class LedgerError(Exception):
    """The paper ledger cannot be read or written (a full disk, a damaged file): nothing changed."""


def _rules_text(rules: PairRules) -> str:
    return json.dumps({"name": rules.name, **rules.settings()})


@functools.lru_cache(maxsize=256)
def _rules(text: str) -> PairRules:
    raw = json.loads(text)
    return PairRules.from_settings(raw.pop("name"), raw)


def clone(account: Account) -> Account:
    """A copy to change: its own wallet and orders; the history lists copied (only appended to)."""
    wallet = Wallet({})
    wallet.free, wallet.reserved = dict(account.wallet.free), dict(account.wallet.reserved)
    return Account(account.uid, wallet, {i: replace(o) for i, o in account.orders.items()},
                   dict(account.stops), list(account.cancelled), list(account.trades))


class PaperLedger:
    def __init__(self, state_dir: Path, balances: Mapping[str, Decimal]) -> None:
        self.path = state_dir / FILE
        self.balances = dict(balances)
        self.accounts: dict[str, Account] = {}
        self._db: sqlite3.Connection | None = None
        self._next_id = FIRST_ID
        self._next_uid = FIRST_UID

    def open(self) -> None:
        """Open (or create) the file and load every paper account (LedgerError if it cannot)."""
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self.path.chmod(0o600)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(SCHEMA)
            self._load()
        except (sqlite3.Error, OSError, ValueError, KeyError) as exc:
            self.close()  # nothing half-loaded stays: the next use tries again
            self.accounts = {}
            raise LedgerError(f"the paper ledger {self.path} cannot be opened: {exc}") from None

    def ensure_open(self) -> None:
        if self._db is None:
            self.open()

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def next_id(self) -> int:
        """An order or trade id (kept in the file with the change that uses it)."""
        self._next_id += 1
        return self._next_id - 1

    def account(self, name: str, now: int) -> Account:
        """The paper account `name`, started with the configured balances the first time."""
        found = self.accounts.get(name)
        if found is None:
            uid = self._next_uid
            found = Account(uid, Wallet({cur: Decimal(v) for cur, v in self.balances.items()}))
            with self._transaction() as db:
                db.execute("INSERT INTO accounts VALUES (?, ?, ?)", (name, uid, now))
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_uid', ?)", (str(uid + 1),))
                self._write_balances(db, name, found, set(found.wallet.free))
            self._next_uid = uid + 1
            self.accounts[name] = found
        return found

    def commit(self, name: str, before: Account, after: Account) -> None:
        """Write what `after` (a `clone` of `before`, changed) changed, in one transaction; then it is
        the account. LedgerError (nothing written, `before` stays) if the disk refuses."""
        wallet_a, wallet_b = before.wallet, after.wallet
        currencies = {c for c in set(wallet_a.free) | set(wallet_b.free)
                      if (wallet_a.free.get(c), wallet_a.reserved.get(c)) != (wallet_b.free.get(c),
                                                                              wallet_b.reserved.get(c))}
        with self._transaction() as db:
            self._write_balances(db, name, after, currencies)
            for order_id in set(before.orders) - set(after.orders):
                db.execute("DELETE FROM orders WHERE order_id = ?", (order_id,))
            for order in after.orders.values():
                old = before.orders.get(order.order_id)
                if old is None or (old.quantity, old.reserved) != (order.quantity, order.reserved):
                    db.execute("INSERT OR REPLACE INTO orders VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                               (order.order_id, name, order.client_id, order.created, order.type,
                                _rules_text(order.pair), str(order.quantity), str(order.price),
                                str(order.reserved)))
            for at, order in after.cancelled[len(before.cancelled):]:
                db.execute("INSERT INTO cancelled (account, at, order_id, client_id, created, type, rules,"
                           " quantity, price) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (name, at, order.order_id, order.client_id, order.created, order.type,
                            _rules_text(order.pair), str(order.quantity), str(order.price)))
            for trade in after.trades[len(before.trades):]:
                db.execute("INSERT INTO trades VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (trade.trade_id, name, trade.date, trade.type, trade.order_id, trade.client_id,
                            _rules_text(trade.pair), str(trade.quantity), str(trade.price),
                            str(trade.amount), str(trade.commission), trade.commission_currency,
                            str(trade.commission_percent), trade.exec_type))
        self.accounts[name] = after

    def reset(self, name: str) -> bool:
        """Forget the paper account `name` (its next call starts it again); whether it existed."""
        with self._transaction() as db:
            existed = db.execute("DELETE FROM accounts WHERE name = ?", (name,)).rowcount > 0
            for table in ("balances", "orders", "cancelled", "trades"):
                db.execute(f"DELETE FROM {table} WHERE account = ?", (name,))  # noqa: S608 - fixed names
        self.accounts.pop(name, None)
        return existed

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        db = self._db
        if db is None:
            raise LedgerError("the paper ledger is not open")
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                db.execute("INSERT OR REPLACE INTO meta VALUES ('next_id', ?)", (str(self._next_id),))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise LedgerError(f"the paper ledger {self.path} cannot be written ({exc})") from None

    def _write_balances(self, db: sqlite3.Connection, name: str, account: Account,
                        currencies: set[str]) -> None:
        wallet = account.wallet
        for cur in sorted(currencies):
            db.execute("INSERT OR REPLACE INTO balances VALUES (?, ?, ?, ?)",
                       (name, cur, str(wallet.free.get(cur, Decimal(0))),
                        str(wallet.reserved.get(cur, Decimal(0)))))

    def _load(self) -> None:
        db = self._db
        assert db is not None
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        self._next_id = int(meta.get("next_id", FIRST_ID))
        self._next_uid = int(meta.get("next_uid", FIRST_UID))  # never reused, also after a reset
        for name, uid in db.execute("SELECT name, uid FROM accounts ORDER BY uid"):
            self.accounts[name] = Account(uid, Wallet({}))
        for name, cur, free, reserved in db.execute("SELECT * FROM balances"):
            wallet = self.accounts[name].wallet
            wallet.free[cur], wallet.reserved[cur] = Decimal(free), Decimal(reserved)
        for order_id, name, client_id, created, kind, rules, quantity, price, reserved in db.execute(
                "SELECT * FROM orders ORDER BY order_id"):
            self.accounts[name].orders[order_id] = Order(order_id, client_id, created, kind, _rules(rules),
                                                         Decimal(quantity), Decimal(price), Decimal(reserved))
        for _seq, name, at, order_id, client_id, created, kind, rules, quantity, price in db.execute(
                "SELECT * FROM cancelled ORDER BY seq"):
            order = Order(order_id, client_id, created, kind, _rules(rules), Decimal(quantity),
                          Decimal(price))
            self.accounts[name].cancelled.append((at, order))
        with closing(db.execute("SELECT * FROM trades ORDER BY trade_id")) as rows:
            for (trade_id, name, date, kind, order_id, client_id, rules, quantity, price, amount, fee,
                 fee_currency, percent, exec_type) in rows:
                self.accounts[name].trades.append(Trade(
                    trade_id, date, kind, order_id, client_id, _rules(rules), Decimal(quantity),
                    Decimal(price), Decimal(amount), Decimal(fee), fee_currency, Decimal(percent), exec_type))
