#!/usr/bin/env bash
# The Dockerfile's build, without a Docker engine: a locked `dist` build, then the
# runtime layout staged under target/image/ (what COPY puts in the image), then smoke
# checks of what the image relies on (the binary's shared libraries are all in
# debian:bookworm-slim's libc; `concierge health` and `--version` work).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
cargo build --profile dist --locked --bin concierge
root=target/image
rm -rf "$root"
install -D -m 0755 target/dist/concierge "$root/usr/local/bin/concierge"
"$root/usr/local/bin/concierge" --version
# Only glibc libraries (present in bookworm-slim) may be needed at run time.
unexpected=$(ldd "$root/usr/local/bin/concierge" | awk '{print $1}' | grep -vE '^(linux-vdso|/lib64/ld-linux|libc\.so|libm\.so|libgcc_s\.so|libdl\.so|libpthread\.so|librt\.so)' || true)
if [[ -n $unexpected ]]; then
    echo "build-image: the binary needs libraries the runtime image lacks: $unexpected" >&2
    exit 1
fi
# The HEALTHCHECK command exits 1 when nothing listens.
if "$root/usr/local/bin/concierge" health --url http://127.0.0.1:1/healthz >/dev/null 2>&1; then
    echo "build-image: concierge health should fail without a client" >&2
    exit 1
fi
echo "build-image: staged $root ($(du -h "$root/usr/local/bin/concierge" | cut -f1) binary)"
