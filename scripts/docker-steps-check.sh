#!/usr/bin/env bash
# Replays the Dockerfile's steps without a Docker engine: the build stage's COPY + npm ci +
# npm prune in a temp copy of the repo, then the runtime stage's files alone in another dir,
# started like the ENTRYPOINT (`node dist/main.js --version`). Keep in sync with Dockerfile.
set -eu

repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d "${TMPDIR:-/tmp}/pgrelay-docker-check.XXXXXX")
trap 'rm -rf "$work"' EXIT

build="$work/build"
app="$work/app"
mkdir -p "$build" "$app"

echo "docker-steps-check: node $(node --version) here; the image uses node 24" >&2

# build stage: COPY package.json package-lock.json tsconfig.json tsconfig.build.json ./ ; COPY src ./src
cp "$repo/package.json" "$repo/package-lock.json" "$repo/tsconfig.json" "$repo/tsconfig.build.json" "$build/"
cp -R "$repo/src" "$build/src"

# RUN npm ci && npm prune --omit=dev
(cd "$build" && npm ci --no-audit --no-fund </dev/null && npm prune --omit=dev --no-audit --no-fund </dev/null)

if [ ! -f "$build/dist/main.js" ]; then
  echo "docker-steps-check: FAIL: npm ci did not build dist/main.js (prepare script)" >&2
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
echo "docker-steps-check: OK ($out; runtime tree $(du -sh "$app" | cut -f1))"
