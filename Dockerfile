# Multi-stage build: a locked release build, then a small Debian runtime with /bin/sh
# (command checks need it), CA certificates and tini to reap orphaned check processes.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates tini \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin concierge
COPY --from=build /src/target/release/concierge /usr/local/bin/concierge
USER concierge
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "/usr/local/bin/concierge"]
CMD ["run"]
