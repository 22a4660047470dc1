# The headprobe binary in a small image (used by deploy/k8s-indexed-job.yaml):
#   docker build -t headprobe .
#   docker run --rm headprobe --help
FROM rust:1-slim-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin headprobe

FROM debian:bookworm-slim
COPY --from=build /src/target/release/headprobe /usr/local/bin/headprobe
USER 65534:65534
ENTRYPOINT ["headprobe"]
