# Container image for pgrelay: a build stage compiles TypeScript to dist/ and drops dev
# dependencies; the runtime stage holds only package.json, production node_modules and dist/.
# scripts/docker-steps-check.sh replays these steps without a Docker engine: keep them in sync.

# The current Node.js LTS, pinned to an exact version (bump it with the CI matrix in package.json's
# engines and .github/workflows/ci.yml).
ARG NODE_IMAGE=node:26.12.1-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /app
# Dependencies first, from the lockfile alone: a change under src/ reuses this layer. No install
# scripts: the `prepare` build needs src/, which is not here yet, and tsc needs none.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build \
 && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE}
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="pgrelay" \
      org.opencontainers.image.description="PostgreSQL connection proxy with transaction pooling that makes switchovers and restarts invisible to applications" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/example/pgrelay" \
      org.opencontainers.image.base.name="docker.io/library/node:26.12.1-bookworm-slim"
ENV NODE_ENV=production
WORKDIR /app
# Files stay root-owned: the service user can read but not modify its own code.
COPY --from=build /app/package.json ./package.json
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
USER node
# 6432: client listener (listen_port). 8080: the HTTP admin API (health probes, metrics) when
# the config sets admin_listen_port = 8080 and admin_listen_addr = 0.0.0.0 (it is off by default).
EXPOSE 6432 8080
# Liveness from the admin API (set PGRELAY_HEALTH_URL when it is not on 127.0.0.1:8080). /health/live
# stays 200 during a pause, so a long pause does not mark the container unhealthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=10s --retries=3 CMD ["node", "/app/dist/healthcheck.js"]
# No init wrapper (tini, --init): main.js installs its own SIGTERM/SIGINT/SIGHUP handlers,
# so signals reach it correctly as PID 1, and it spawns no children that would need reaping.
STOPSIGNAL SIGTERM
# Node options: src/node-options.ts says why (a test keeps them equal).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/main.js"]
CMD ["/etc/pgrelay/pgrelay.ini"]
