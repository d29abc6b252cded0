# Container image for pgrelay: a build stage compiles TypeScript to dist/ and drops dev
# dependencies; the runtime stage holds only package.json, production node_modules and dist/.
# scripts/docker-steps-check.sh replays these steps without a Docker engine: keep them in sync.

FROM node:24-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./
COPY src ./src
# npm ci runs the `prepare` script, which builds dist/; then only production deps are kept.
RUN npm ci --no-audit --no-fund \
 && npm prune --omit=dev --no-audit --no-fund

FROM node:24-bookworm-slim
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
# No init wrapper (tini, --init): main.js installs its own SIGTERM/SIGINT/SIGHUP handlers,
# so signals reach it correctly as PID 1, and it spawns no children that would need reaping.
STOPSIGNAL SIGTERM
# Node options: src/node-options.ts says why (a test keeps them equal).
ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/main.js"]
CMD ["/etc/pgrelay/pgrelay.ini"]
