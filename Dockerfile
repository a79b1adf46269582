# `tracehose serve` as a container: the Firehose HTTP endpoint behind a load balancer (ECS, Kubernetes).
#   docker build -t tracehose .
#   docker run -p 8080:8080 -e TRACEHOSE_ACCESS_KEYS=... -e DT_CONNECTION_BASE_URL=... tracehose
# The load balancer terminates TLS (Firehose delivers only over HTTPS) and health-checks GET /healthz.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p tracehose-forwarder --bin tracehose

# glibc and the CA certificates the AWS SDK reads (Secrets Manager, for *_SECRET_ARN); the destinations'
# client carries its own roots. Nothing else: no shell, runs as nonroot.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/tracehose /usr/local/bin/tracehose
EXPOSE 8080
# SIGTERM (what ECS and Kubernetes send) drains requests in flight within --shutdown-timeout (25 s, under
# both platforms' default 30 s grace period).
ENTRYPOINT ["/usr/local/bin/tracehose", "serve", "--listen", "0.0.0.0:8080"]
