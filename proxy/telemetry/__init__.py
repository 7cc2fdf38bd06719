"""How the daemon is watched: Prometheus metrics counted on the hot path, and one logging set-up (text
or JSON lines) with a fast path for access lines."""
