// The container image's HEALTHCHECK: GET /health/live on the admin API, exit 0 when it answers 200.
// The URL is PGRELAY_HEALTH_URL, or http://127.0.0.1:8080/health/live (the port deploy/ configures).
// Kept apart from main.ts so that a check never starts, loads or touches a pgrelay.

const url = process.env['PGRELAY_HEALTH_URL'] ?? 'http://127.0.0.1:8080/health/live';

try {
  const res = await fetch(url, { signal: AbortSignal.timeout(2500) });
  process.stdout.write(`${url}: ${res.status}\n`);
  process.exit(res.status === 200 ? 0 : 1);
} catch (err) {
  process.stdout.write(`${url}: ${(err as Error).message}\n`);
  process.exit(1);
}
