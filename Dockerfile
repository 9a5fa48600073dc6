# syntax=docker/dockerfile:1.7
#
# Container images for the shop, all from this one file (BuildKit).
#
# One Dockerfile with several targets instead of one per binary: the five Rust binaries
# come out of a single workspace build (one dependency graph, one cargo cache), and the
# runtime images differ only in the binary, its port and its health URL. Five copies of
# the same file would drift; here the shared part (`runtime` below) is written once and
# each image is a named target:
#
#   docker build --target backend       -t shop/backend .
#   docker build --target user-service  -t shop/user-service .
#   docker build --target cart-service  -t shop/cart-service .
#   docker build --target order-service -t shop/order-service .
#   docker build --target loadtester    -t shop/loadtester .
#   docker build --target docs          -t shop/docs .
#
# docker-compose.yml builds them with `build: {context: ., target: ...}`; BuildKit builds
# the shared `builder` stage once for all of them.
#
# The builder and the runtime must be the same Debian release (the binaries link
# against its glibc): bump RUST_VERSION and DEBIAN_RELEASE together.

ARG RUST_VERSION=1.95.0
ARG DEBIAN_RELEASE=bookworm
ARG PYTHON_VERSION=3.11.13

# ---------------------------------------------------------------------------------------
# builder: the release binaries of the workspace
FROM rust:${RUST_VERSION}-${DEBIAN_RELEASE} AS builder
WORKDIR /src
# Only what cargo needs (the whole workspace, as every member's manifest is read);
# .dockerignore keeps target/, .git and the rest out of the context.
COPY Cargo.toml Cargo.lock ./
COPY .cargo .cargo
COPY services services
COPY loadtester loadtester
COPY xtask xtask
# Cargo's registry, git checkouts and target directory are BuildKit cache mounts: a
# rebuild after a source change recompiles our crates only. A cache mount is not part of
# the image, so the binaries are copied out of it in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        --bin backend --bin user-service --bin cart-service --bin order-service \
        --bin loadtester \
 && mkdir -p /out \
 && cp target/release/backend target/release/user-service target/release/cart-service \
       target/release/order-service target/release/loadtester /out/

# ---------------------------------------------------------------------------------------
# runtime: what every service image shares. Debian slim rather than distroless: the
# images need a shell and curl for their HEALTHCHECK (the binaries have no probe mode,
# and a distroless image has nothing to run one with), and docker-compose.yml's `jwt-key`
# step uses the shell to create the token signing key. curl is the one added package
# (with CA certificates, which the binaries do not need: they talk plain HTTP inside the
# compose network).
FROM debian:${DEBIAN_RELEASE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 shop \
 && useradd --system --uid 10001 --gid shop --home-dir /var/lib/shop --shell /usr/sbin/nologin shop \
 && mkdir -p /var/lib/shop/keys \
 && chown -R shop:shop /var/lib/shop
# JSON logs on standard error, which is what `docker logs` collects.
ENV LOG_FORMAT=json
WORKDIR /var/lib/shop
USER shop

# ---------------------------------------------------------------------------------------
# One image per service. Each listens on all interfaces (the binaries' default is
# 127.0.0.1, which a container cannot be reached on) and checks itself with its liveness
# endpoint. STORAGE is left at its default (memory) so that `docker run` works alone;
# docker-compose.yml sets the CQL settings.

FROM runtime AS backend
COPY --from=builder /out/backend /usr/local/bin/backend
ENV BACKEND_LISTEN=0.0.0.0:8000
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8000/api/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/backend"]

FROM runtime AS user-service
COPY --from=builder /out/user-service /usr/local/bin/user-service
ENV USER_LISTEN=0.0.0.0:8003
EXPOSE 8003
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8003/user-api/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/user-service"]

FROM runtime AS cart-service
COPY --from=builder /out/cart-service /usr/local/bin/cart-service
ENV CART_LISTEN=0.0.0.0:8001
EXPOSE 8001
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8001/cart-api/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/cart-service"]

FROM runtime AS order-service
COPY --from=builder /out/order-service /usr/local/bin/order-service
ENV ORDER_LISTEN=0.0.0.0:8002
EXPOSE 8002
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS -o /dev/null http://127.0.0.1:8002/order-api/health/live || exit 1
ENTRYPOINT ["/usr/local/bin/order-service"]

# The load tester is a batch job, not a server: no HEALTHCHECK. Its metrics port is
# exposed for Prometheus (job `loadtester`).
FROM runtime AS loadtester
COPY --from=builder /out/loadtester /usr/local/bin/loadtester
ENV LOADTEST_METRICS_LISTEN=0.0.0.0:9464
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/loadtester"]

# ---------------------------------------------------------------------------------------
# docs: the MkDocs site, built with the pinned tool chain of docs/requirements.txt (the
# same one .ci/docs.sh uses, with the same --strict build), served as static files by
# Python's http.server on port 8004, as in the native stack: the gateway's `docs`
# upstream (observability/nginx/upstreams.compose.conf) is docs:8004 and passes /docs/...
# through unchanged, so the site lives under /srv/docs/. The serving stage reuses the
# build stage's base image, so it costs no extra download.

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS docs-builder
WORKDIR /src
COPY docs/requirements.txt docs/requirements.txt
RUN --mount=type=cache,target=/root/.cache/pip \
    python -m pip install --disable-pip-version-check --no-input -r docs/requirements.txt
COPY mkdocs.yml ./
COPY docs docs
ENV NO_MKDOCS_2_WARNING=1
RUN mkdocs build --strict --site-dir /site

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_RELEASE} AS docs
RUN useradd --system --uid 10001 --home-dir /srv --shell /usr/sbin/nologin docs
COPY --from=docs-builder /site /srv/docs
USER docs
EXPOSE 8004
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8004/docs/', timeout=2)"]
ENTRYPOINT ["python", "-m", "http.server", "8004", "--bind", "0.0.0.0", "--directory", "/srv"]
