"""Paper trading (SPEC §11, issue 14): private calls of a paper account answered from a local ledger
on EXMO's live prices, by the shared exchange engine; nothing of a paper account is signed or sent."""
