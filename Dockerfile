# Concierge container image.
#
# Build stage: a locked build with the `dist` profile (release, whole-program LTO).
# Runtime stage: Debian slim with /bin/sh (command checks run `sh -c`), CA certificates
# (TLS checks and amqps), and tini as PID 1 so orphaned check processes are reaped. Runs as an unprivileged user; configuration comes
# only from the environment (see the README). scripts/build-image.sh performs the same
# build and staging without a Docker engine.
# The runtime's base image; the tests use one made from Debian packages (no registry there).
ARG BASE=debian:bookworm-slim
# Where the binary comes from: `build` compiles it in the stage below; `prebuilt` takes
# target/dist/concierge from the build context (what scripts/docker.sh does with a binary
# built on the host, so that the tests run this Dockerfile's runtime stage).
ARG BINARY=build

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY benches ./benches
RUN cargo build --profile dist --locked --bin concierge

FROM scratch AS prebuilt
COPY target/dist/concierge /src/target/dist/concierge

FROM ${BINARY} AS binary

FROM ${BASE} AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin concierge
COPY --from=binary /src/target/dist/concierge /usr/local/bin/concierge
USER 10001
ENV CONCIERGE_LOG_FORMAT=json
EXPOSE 3030/tcp 3030/udp 3031/tcp
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["/usr/local/bin/concierge", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/concierge"]
CMD ["run"]
