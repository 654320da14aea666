# syntax=docker/dockerfile:1
# The grpcrouter CLI as a container: `serve` (a router for the proto module mounted at /proto)
# by default, `bridge` (the sidecar) as the other command. See README, "Container image".
#   docker build -t grpcrouter .
#   docker run --rm -p 9090:9090 -v "$PWD/proto:/proto:ro" grpcrouter
# What the image runs is tested without a container engine by cli/test/container.test.ts,
# which reads this file's ENTRYPOINT, CMD and HEALTHCHECK and runs them on the same bundle.

# Build: the CLI as one self-contained file with the dashboard's files and this platform's
# buf beside it (extension/scripts/build.mjs --standalone-cli), so the runtime stage needs no
# node_modules at all.
FROM node:20-slim AS build
WORKDIR /src
# The dependencies first (a layer that changes only with the lockfile); no install scripts:
# nothing the build needs runs one (buf and esbuild come as platform packages).
COPY package.json package-lock.json ./
COPY runtime/package.json runtime/
COPY generator/package.json generator/
COPY cli/package.json cli/
COPY server/package.json server/
COPY extension/package.json extension/
COPY examples/echo/package.json examples/echo/
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY . .
RUN node extension/scripts/build.mjs --standalone-cli /out

FROM node:20-slim
LABEL org.opencontainers.image.title="grpcrouter" \
      org.opencontainers.image.description="Route gRPC through firewalls: a router that instances dial out to, and the bridge sidecar" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/grpcrouter/grpcrouter"
COPY --from=build /out /app
# The proto module is mounted here (read-only is fine: serve only reads it and watches it
# for changes). The image's own user, never root.
WORKDIR /proto
USER node
# 9090: gRPC for clients and instances; 9464: Prometheus /metrics.
EXPOSE 9090 9464
ENTRYPOINT ["node", "/app/grpcrouter.js"]
CMD ["serve", "--root", ".", "--host", "0.0.0.0", "--port", "9090", "--no-dashboard", "--metrics-port", "9464"]
# grpc.health.v1 on the router's port: SERVING while the router accepts calls. A container
# that runs `bridge` serves no gRPC: run it with --no-healthcheck.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["node", "/app/grpcrouter.js", "health", "--address", "127.0.0.1:9090"]
