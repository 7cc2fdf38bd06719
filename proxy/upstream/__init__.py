"""The connection to EXMO: one HTTP/1.1 client with a pool, deadlines, verified TLS and a strict answer
parser, and the classification of failures into "not sent" and "outcome unknown"."""
