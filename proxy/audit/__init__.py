"""The audit trail of signed calls: what an entry holds, writing it before the answer, the per-call
trail around policy and dispatch, and reading it back for `exmo-proxy audit tail|grep`."""
