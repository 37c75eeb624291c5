# The scrc image: scrc (the runner) and scrc-simulator, built in a Rust stage and run from a small runtime image.
#
#   With a registry:      docker build -t scrc .
#   Without a registry:   scripts/build-deploy-images.sh   (local base images from Debian packages, vendored crates)
#
# The base images are build arguments. BUILDER_IMAGE needs Rust >= 1.88, a C toolchain with a static libc, and the
# OpenSSL and zlib headers; RUNTIME_IMAGE needs libssl3 and zlib, with a glibc no older than the builder's. With
# crates vendored into target/vendor (`cargo vendor target/vendor`) the build runs offline.
ARG BUILDER_IMAGE=rust:1-bookworm
ARG RUNTIME_IMAGE=debian:bookworm-slim

FROM ${BUILDER_IMAGE} AS builder
WORKDIR /src
COPY . .
RUN scripts/cargo-build-release.sh -p scrc -p scrc-simulator --bins \
    && mkdir -p /out && install -m 0755 target/release/scrc target/release/scrc-simulator /out/

FROM ${RUNTIME_IMAGE} AS runtime
# A registry base such as debian:bookworm-slim may lack OpenSSL; the local runtime base already has it.
RUN if ! ldconfig -p | grep -q 'libssl.so.3 '; then \
      apt-get update && apt-get install -y --no-install-recommends libssl3 ca-certificates \
      && rm -rf /var/lib/apt/lists/*; \
    fi
COPY --from=builder /out/ /usr/local/bin/
# Not root. The Docker socket is reached through its group: give the container the socket's group id
# (compose: group_add: ["${DOCKER_GID}"]; docker run: --group-add $(stat -c %g /var/run/docker.sock)).
USER 10001:10001
ENV LOG_FORMAT=json RUNNER_HEALTH_FILE=/tmp/scrc-health.json
# /metrics, /healthz and /readyz (RUNNER_HTTP_ADDR).
EXPOSE 9464
# Healthy only while the runner is ready, as /readyz says: the Kafka brokers and the Docker engine answer and the
# consumer is in its group.
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 CMD ["scrc", "health"]
ENTRYPOINT ["scrc"]
CMD ["run"]
