"""exmo-signing-proxy: a local daemon that signs EXMO API requests for any bot."""

__version__ = "0.1.0"
