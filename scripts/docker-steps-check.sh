#!/usr/bin/env bash
# Replays the Dockerfile's steps without a Docker engine: the build stage's dependency layer
# (package.json + package-lock.json alone, npm ci), then the sources, the build and npm prune, in a
# temp dir; then the runtime stage's files alone in another dir, started like the ENTRYPOINT
# (`node dist/main.js --version`), and the HEALTHCHECK command against a running pgrelay.
# Keep in sync with Dockerfile (test/deploy/shipping.test.ts checks that they agree).
set -eu
# The image's node runs with no loader hooks: drop any a caller (a test runner) put in the environment.
unset NODE_OPTIONS

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pgrelay-docker-check.XXXXXX")
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

build="$work/build"
app="$work/app"
mkdir -p "$build" "$app"

image=$(sed -n 's/^ARG NODE_IMAGE=//p' "$repo/Dockerfile")
echo "docker-steps-check: node $(node --version) here; the image uses $image" >&2

# build stage, dependency layer: COPY package.json package-lock.json ./ ; RUN npm ci --ignore-scripts
cp "$repo/package.json" "$repo/package-lock.json" "$build/"
(cd "$build" && npm ci --ignore-scripts --no-audit --no-fund </dev/null >&2)
if [ -e "$build/src" ] || [ -e "$build/dist" ]; then
  echo "docker-steps-check: FAIL: the dependency layer saw sources or built something" >&2
  exit 1
fi

# COPY tsconfig.json tsconfig.build.json ./ ; COPY src ./src ; RUN npm run build && npm prune --omit=dev
cp "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$build/"
cp -R "$repo/src" "$build/src"
(cd "$build" && npm run build </dev/null >&2 && npm prune --omit=dev --no-audit --no-fund </dev/null >&2)

if [ ! -f "$build/dist/main.js" ] || [ ! -f "$build/dist/healthcheck.js" ]; then
  echo "docker-steps-check: FAIL: the build did not produce dist/main.js and dist/healthcheck.js" >&2
  exit 1
fi
for dev in typescript tap tsx @types/node pg; do
  if [ -e "$build/node_modules/$dev" ]; then
    echo "docker-steps-check: FAIL: dev dependency $dev survived npm prune --omit=dev" >&2
    exit 1
  fi
done

# runtime stage: only package.json, node_modules and dist/ from the build stage
cp "$build/package.json" "$app/"
cp -R "$build/node_modules" "$app/node_modules"
cp -R "$build/dist" "$app/dist"

# USER node: as root, run unprivileged against files it cannot write, as in the image.
run_as=()
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null 2>&1; then
  chmod -R a+rX,go-w "$work"
  run_as=(setpriv --reuid=nobody --regid=nogroup --clear-groups)
fi

# ENTRYPOINT ["node", "--max-semi-space-size=8", "/app/dist/main.js"], from a neutral cwd so nothing resolves via the repo
out=$(cd / && env NODE_ENV=production "${run_as[@]}" node --max-semi-space-size=8 "$app/dist/main.js" --version </dev/null)
expected="pgrelay $(node -p 'require(process.argv[1]).version' "$repo/package.json")"
if [ "$out" != "$expected" ]; then
  echo "docker-steps-check: FAIL: --version printed '$out', expected '$expected'" >&2
  exit 1
fi

# HEALTHCHECK CMD ["node", "/app/dist/healthcheck.js"]: unhealthy while nothing listens, healthy
# once pgrelay serves /health/live.
port=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
admin=$(node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})')
url="http://127.0.0.1:$admin/health/live"
printf '[databases]\n[pgrelay]\nlisten_port = %s\nadmin_listen_port = %s\n' "$port" "$admin" > "$work/pgrelay.ini"
chmod a+r "$work/pgrelay.ini"
if (cd / && env PGRELAY_HEALTH_URL="$url" "${run_as[@]}" node "$app/dist/healthcheck.js" >/dev/null); then
  echo "docker-steps-check: FAIL: the healthcheck passed with no pgrelay running" >&2
  exit 1
fi
(cd / && exec env NODE_ENV=production "${run_as[@]}" node --max-semi-space-size=8 "$app/dist/main.js" "$work/pgrelay.ini" >"$work/pgrelay.log" 2>&1 </dev/null) &
pid=$!
health=""
for _ in $(seq 1 100); do
  if health=$(cd / && env PGRELAY_HEALTH_URL="$url" "${run_as[@]}" node "$app/dist/healthcheck.js"); then break; fi
  health=""
  sleep 0.1
done
if [ -z "$health" ]; then
  echo "docker-steps-check: FAIL: the healthcheck never passed against a running pgrelay:" >&2
  cat "$work/pgrelay.log" >&2
  exit 1
fi
echo "docker-steps-check: OK ($out; healthcheck $health; runtime tree $(du -sh "$app" | cut -f1))"
