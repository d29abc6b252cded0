// The HTTP admin API (fastify): PAUSE/RESUME/RECONNECT, the read-only snapshots, health probes and
// /metrics, as thin adapters over Control. Builds the app and never listens: the app calls listen().

import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance, type FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { AdminError, type Control } from '../control/contract.js';
import type { Metrics } from '../metrics/metrics.js';
import { BearerCheck } from './http-auth.js';
import { badRequest, errorBody, HttpErrorCode, parserError, rawErrorResponse, toHttpError, type HttpError } from './http-errors.js';
import { databaseInput, hintInput, pauseInput } from './http-input.js';

export { BearerCheck, checkAdminBinding, readAdminToken } from './http-auth.js';

export interface AdminServerOptions {
  control: Control;
  metrics: Metrics | null;
  /**
   * Bearer token required on every route but /health/* and /metrics; null or '' = none. A
   * BearerCheck lets the caller replace the token later (a reload rotates it).
   */
  token: string | null | BearerCheck;
  logger?: Logger | false;
}

// Probes and scrapers hold no token: Kubernetes probes and Prometheus are configured per pod, and
// neither route can change anything.
const PUBLIC_ROUTES = new Set(['/health/live', '/health/ready', '/metrics']);

// Admin requests are a few hundred bytes of JSON.
const BODY_LIMIT = 64 * 1024;

export function buildAdminServer(opts: AdminServerOptions): FastifyInstance {
  const { control, metrics } = opts;
  const bearer = opts.token instanceof BearerCheck ? opts.token : new BearerCheck(opts.token);
  // Typed as fastify's base logger so the instance is a plain FastifyInstance for its callers.
  const loggerInstance: FastifyBaseLogger | undefined = opts.logger ? opts.logger.child({ component: 'admin-http' }) : undefined;
  const app = fastify({
    ...(loggerInstance !== undefined ? { loggerInstance } : { logger: false }),
    // Probes and scrapes arrive every few seconds; the verbs log their own line instead.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    // fastify's own closing-time 503 has another body shape; while pgrelay shuts down, control.ready()
    // is false and /health/ready says so in the usual error format.
    return503OnClosing: false,
    frameworkErrors: (err, _req, reply) => send(reply, toHttpError(err)),
    // Bytes node's HTTP parser refuses never become a request, so fastify's error handler never
    // sees them; its default answer has another body shape.
    clientErrorHandler: (err, socket) => {
      // A reset connection, or one already answered and closed: nobody is left to tell.
      if ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || socket.destroyed) return;
      app.log.debug({ err: err.message, code: (err as NodeJS.ErrnoException).code }, 'admin api: malformed request');
      if (socket.writable) socket.write(rawErrorResponse(parserError(err as NodeJS.ErrnoException)));
      socket.destroy();
    },
  });
  // Node answers an Expect header other than 100-continue with a bare 417 unless someone listens.
  app.server.on('checkExpectation', (req, res) => {
    const e: HttpError = { status: 417, body: errorBody(HttpErrorCode.ExpectationFailed, `unsupported Expect header: ${JSON.stringify(req.headers.expect)}`) };
    const body = JSON.stringify(e.body);
    res.writeHead(e.status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(body), connection: 'close' });
    res.end(body);
  });

  // Which methods each path has, so a wrong method gets 405 with Allow instead of a bare 404.
  const methods = new Map<string, Set<string>>();
  app.addHook('onRoute', (route) => {
    const set = methods.get(route.url) ?? new Set<string>();
    for (const m of [route.method].flat()) set.add(m);
    methods.set(route.url, set);
  });

  // Bodies: JSON, or a form (curl -d). An empty body is no body, whatever its Content-Type says.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_req, text, done) => {
    if ((text as string).trim() === '') return done(null, undefined);
    try {
      done(null, JSON.parse(text as string));
    } catch {
      done(badRequest('body', 'the body is not valid JSON'), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_req, text, done) => {
    try {
      done(null, parseForm(text as string));
    } catch (err) {
      done(err as Error, undefined);
    }
  });

  app.addHook('onRequest', async (req) => {
    if (!bearer.required || PUBLIC_ROUTES.has(req.routeOptions.url ?? '')) return;
    // Unknown routes need the token too, so the API cannot be mapped without it.
    if (!bearer.matches(req.headers.authorization)) {
      throw new AdminError(HttpErrorCode.Unauthorized, 'missing or wrong bearer token (Authorization: Bearer <admin token>)', 401);
    }
  });

  app.setErrorHandler((err, req, reply) => {
    const e = toHttpError(err);
    if (e.status >= 500) req.log.error({ err, url: req.url, method: req.method }, 'admin api: request failed');
    send(reply, e);
  });

  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split('?', 1)[0]!;
    const allowed = methods.get(path);
    if (allowed !== undefined) {
      reply.header('allow', [...allowed].sort().join(', '));
      return send(reply, { status: 405, body: errorBody(HttpErrorCode.MethodNotAllowed, `${req.method} is not allowed on ${path}`) });
    }
    return send(reply, { status: 404, body: errorBody(HttpErrorCode.NotFound, `no route ${req.method} ${path}`) });
  });

  app.post('/v1/pause', async (req, reply) => {
    const input = pauseInput(req.query, req.body);
    // A Patroni hook names its node; anyone else is an operator or a script.
    const by = input.node !== undefined ? `hook (node ${input.node}) via http ${req.ip}` : `http ${req.ip}`;
    const result = await control.pause({ ...input, by });
    req.log.info({ ...input, from: req.ip, result: result.result, drainMs: result.drainMs, serversLeft: result.serversLeft }, 'admin api: pause');
    // 504: the pools stay paused, but transactions outlived the drain deadline; the body lists them.
    return reply.code(result.result === 'timeout' ? 504 : 200).send(result);
  });

  app.post('/v1/resume', async (req) => {
    const input = databaseInput(req.query, req.body);
    const result = control.resume({ ...input, by: `http ${req.ip}` });
    req.log.info({ ...input, from: req.ip, wasPaused: result.wasPaused, pausedMs: result.pausedMs }, 'admin api: resume');
    return result;
  });

  app.post('/v1/reconnect', async (req) => {
    const { database } = databaseInput(req.query, req.body);
    const servers = control.reconnect(database);
    req.log.info({ database, from: req.ip, servers }, 'admin api: reconnect');
    return { database: database ?? null, servers };
  });

  // A Patroni callback's "this node may be primary now": pgrelay verifies, then resumes (202).
  app.post('/v1/primary-hint', async (req, reply) => {
    const input = hintInput(req.query, req.body);
    const result = control.primaryHint(input);
    return reply.code(202).send(result);
  });
  app.get('/v1/state', async () => control.state());
  app.get('/v1/pools', async () => ({ items: control.pools() }));
  app.get('/v1/clients', async () => ({ items: control.clients() }));
  app.get('/v1/servers', async () => ({ items: control.servers() }));
  app.get('/v1/databases', async () => ({ items: control.databases() }));
  app.get('/v1/stats', async () => ({ items: control.stats() }));

  app.get('/health/live', async () => ({ status: 'ok' }));
  app.get('/health/ready', async (_req, reply) => {
    if (control.ready()) return { status: 'ok' };
    return send(reply, { status: 503, body: errorBody(HttpErrorCode.NotReady, 'not ready: not listening yet, or shutting down') });
  });

  app.get('/metrics', async (_req, reply) => {
    if (metrics === null) return send(reply, { status: 404, body: errorBody(HttpErrorCode.NotFound, 'metrics are disabled') });
    const text = await metrics.metrics();
    return reply.type(metrics.contentType).send(text);
  });

  return app;
}

function send(reply: FastifyReply, e: HttpError): FastifyReply {
  if (e.status === 401) reply.header('www-authenticate', 'Bearer realm="pgrelay"');
  return reply.code(e.status).type('application/json; charset=utf-8').send(e.body);
}

/** application/x-www-form-urlencoded, with each field given at most once. */
function parseForm(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(text)) {
    if (Object.hasOwn(out, key)) throw badRequest(key, `"${key}" is given more than once`);
    out[key] = value;
  }
  return out;
}
