"""WebSocket streams: EXMO's WebSocket API relayed, with the secret kept in the daemon (SPEC §5b).

frames.py reads and writes the few frames the daemon looks at itself (pure functions); parts.py is what
streams share; login.py the daemon's login upstream; stream.py one relayed socket pair (connect, log in,
two pumps, close with a reason); relay.py holds every open stream (caps, the slow-client sweep, SIGTERM).
"""
