"""EXMO's spot exchange as a pure engine: wallets, orders, fills, fees, and EXMO's answers and texts.

No I/O and no clock of its own: a venue (orders.Venue) gives the pairs' rules, the order book, ids
and the time. The simulator runs it on its synthetic market; paper mode (issue 14) on EXMO's live
one. Both sides import it; it imports nothing of either.
"""
