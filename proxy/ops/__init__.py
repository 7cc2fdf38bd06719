"""Running the daemon: bind, announce (sd_notify), serve, reload on SIGHUP, drain on SIGTERM; and the
health-check client of `exmo-proxy health`."""
