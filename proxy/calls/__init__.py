"""The way out to EXMO: the dispatcher, per-key turns and nonces (the design note is in nonce.py), the
outbound rate limit and shared public reads."""
