# syntax=docker/dockerfile:1
#
# One image for the whole compose stack: the five services' binaries and the `faultline`
# launcher / chaos runner. docker-compose.yml runs each service as its own binary
# (`command: ["payment"]`, …); configuration is the FAULTLINE__… environment and the file at
# $FAULTLINE_CONFIG, exactly as outside Docker.
#
#   docker build -t faultline:local .

# The toolchain the workspace is checked with (rust-version 1.94; CI runs 1.95).
ARG RUST_IMAGE=rust:1.95.0-slim-trixie
# Same Debian release as the builder, so the binaries find the glibc they were linked against.
ARG RUNTIME_IMAGE=debian:trixie-20260803-slim

# --- build --------------------------------------------------------------------------------------
FROM ${RUST_IMAGE} AS build

# rdkafka builds librdkafka from source with its own configure script and make (the crate's
# default features: no cmake, no TLS, zlib from the system); SQLite is compiled in by sqlx.
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential pkg-config zlib1g-dev \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /src
# The whole workspace: cargo loads every member's manifest even to build a few of them.
COPY . .

# Cache mounts keep the registry and the target directory between builds (BuildKit), so a
# source change rebuilds only what changed. Binaries are copied out of the cache in the same
# step, because the mount is gone afterwards.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked \
        -p gateway -p reservation -p inventory -p payment -p analytics -p faultline \
 && mkdir -p /out \
 && for bin in gateway reservation inventory payment analytics faultline; do \
        cp "target/release/$bin" /out/; \
    done

# --- runtime ------------------------------------------------------------------------------------
FROM ${RUNTIME_IMAGE} AS runtime

# curl: the compose healthchecks ask each service's /ready. zlib (librdkafka) and glibc are
# in the base image already.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /opt/faultline --shell /usr/sbin/nologin faultline

COPY --from=build /out/ /usr/local/bin/

# The chaos runner works from /opt/faultline like from a checkout: scenarios under
# chaos/scenarios/, results under runs/ (a volume in compose, owned by the runner's user).
WORKDIR /opt/faultline
COPY chaos/scenarios ./chaos/scenarios
RUN mkdir -p runs && chown faultline:faultline runs

USER faultline
ENV RUST_LOG=info
EXPOSE 8080

# Compose names the binary per service; alone, the image shows what it carries.
CMD ["faultline", "--help"]
