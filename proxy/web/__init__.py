"""The daemon's HTTP surface: `create_app(config)`, the middleware that answers every refusal in one
shape, request parsing, the browser/host guard, client authentication, handlers and the access log."""
