# exmo-signing-proxy as a sidecar image: non-root, read-only root filesystem friendly, exec probes.
#
#   docker build -t exmo-proxy .
#   docker run --read-only --tmpfs /tmp --cap-drop ALL --network container:<bot> \
#     -v ./exmo-proxy.yaml:/etc/exmo-proxy/exmo-proxy.yaml:ro -v exmo-state:/var/lib/exmo-proxy \
#     -v ./passphrase:/run/secrets/exmo-proxy-passphrase:ro exmo-proxy
#
# Stage 1 builds wheels for the project and every dependency; stage 2 installs only those wheels
# (no network, no compiler) into a venv and runs as an unprivileged numeric user. BASE is any Debian
# bookworm image with python3 and its venv module (`.ci/run` builds with a stand-in made by debootstrap,
# since no registry is reachable there).

ARG BASE=python:3.12.8-slim-bookworm
FROM ${BASE} AS build
# A CA bundle for pip where TLS is intercepted (`.ci/run` mounts the host's); unset, pip uses its own.
ARG PIP_CERT
WORKDIR /src
COPY pyproject.toml README.md ./
COPY proxy ./proxy
RUN python -m venv /build \
    && /build/bin/pip wheel --no-cache-dir --wheel-dir /wheels ".[uvloop]"

FROM ${BASE}
COPY --from=build /wheels /wheels
RUN python -m venv /opt/exmo-proxy \
    && /opt/exmo-proxy/bin/pip install --no-cache-dir --no-index --find-links /wheels "exmo-signing-proxy[uvloop]" \
    && rm -rf /wheels \
    && mkdir -p /var/lib/exmo-proxy /etc/exmo-proxy \
    && chown 10001:10001 /var/lib/exmo-proxy \
    && chmod 0700 /var/lib/exmo-proxy
ENV PATH=/opt/exmo-proxy/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EXMO_PROXY_CONFIG=/etc/exmo-proxy/exmo-proxy.yaml
USER 10001:10001
VOLUME ["/var/lib/exmo-proxy"]
# The passphrase is read from /run/secrets/exmo-proxy-passphrase (a Docker/Kubernetes secret).
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
    CMD ["exmo-proxy", "health", "--url", "http://127.0.0.1:8080"]
ENTRYPOINT ["exmo-proxy"]
CMD ["run", "--listen", "127.0.0.1:8080", "--state-dir", "/var/lib/exmo-proxy"]
