"""What EXMO is: its method tables, body encoding and signing, and how to read its answers.

Pure: nothing here does I/O, keeps state or imports another part of the daemon, so every layer above
may use it (exmo-api.md is the source for every table and text).
"""
