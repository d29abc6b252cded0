// The HTTP admin API's error catalogue and the one mapping from anything thrown to a status and a
// `{"error":{"code","message","field"?}}` body, including the errors node's HTTP parser raises before
// fastify sees a request. Internal details never reach the response.

import { STATUS_CODES } from 'node:http';

import { AdminError } from '../control/contract.js';

export const HttpErrorCode = {
  BadRequest: 'PGRELAY_BAD_REQUEST',
  Unauthorized: 'PGRELAY_UNAUTHORIZED',
  NotFound: 'PGRELAY_NOT_FOUND',
  MethodNotAllowed: 'PGRELAY_METHOD_NOT_ALLOWED',
  RequestTimeout: 'PGRELAY_REQUEST_TIMEOUT',
  PayloadTooLarge: 'PGRELAY_PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'PGRELAY_UNSUPPORTED_MEDIA_TYPE',
  ExpectationFailed: 'PGRELAY_EXPECTATION_FAILED',
  HeadersTooLarge: 'PGRELAY_HEADERS_TOO_LARGE',
  NotReady: 'PGRELAY_NOT_READY',
  Internal: 'PGRELAY_INTERNAL',
} as const;
export type HttpErrorCode = (typeof HttpErrorCode)[keyof typeof HttpErrorCode];

export interface ErrorBody {
  readonly error: { readonly code: string; readonly message: string; readonly field?: string };
}

export interface HttpError {
  readonly status: number;
  readonly body: ErrorBody;
}

export function errorBody(code: string, message: string, field?: string): ErrorBody {
  return { error: field === undefined ? { code, message } : { code, message, field } };
}

/** A 400 naming the offending input field. */
export function badRequest(field: string, message: string): AdminError {
  return new AdminError(HttpErrorCode.BadRequest, message, 400, field);
}

/** Maps an error thrown while handling a request to what the caller sees. */
export function toHttpError(err: unknown): HttpError {
  if (err instanceof AdminError) {
    return { status: err.httpStatus, body: errorBody(err.code, err.message, err.field) };
  }
  // fastify's own client errors (FST_ERR_CTP_*, FST_ERR_BAD_URL ...) carry a 4xx statusCode and a
  // message written for the caller; anything else is our bug and stays in the log.
  const fst = err as { code?: unknown; statusCode?: unknown; message?: unknown };
  if (typeof fst.code === 'string' && fst.code.startsWith('FST_') && typeof fst.statusCode === 'number' && fst.statusCode >= 400 && fst.statusCode < 500) {
    const message = typeof fst.message === 'string' ? fst.message : 'bad request';
    return { status: fst.statusCode, body: errorBody(clientErrorCode(fst.statusCode), message) };
  }
  return { status: 500, body: errorBody(HttpErrorCode.Internal, 'internal error; see the pgrelay log') };
}

function clientErrorCode(status: number): HttpErrorCode {
  switch (status) {
    case 404:
      return HttpErrorCode.NotFound;
    case 405:
      return HttpErrorCode.MethodNotAllowed;
    case 408:
      return HttpErrorCode.RequestTimeout;
    case 413:
      return HttpErrorCode.PayloadTooLarge;
    case 415:
      return HttpErrorCode.UnsupportedMediaType;
    case 417:
      return HttpErrorCode.ExpectationFailed;
    case 431:
      return HttpErrorCode.HeadersTooLarge;
    default:
      return HttpErrorCode.BadRequest;
  }
}

/**
 * What a connection whose bytes node's HTTP parser refused is told ('clientError': a malformed
 * request line or header, headers over --max-http-header-size, a request that timed out). The
 * parser's own code (HPE_...) goes to the log, not to the caller.
 */
export function parserError(err: { code?: unknown }): HttpError {
  switch (err.code) {
    case 'HPE_HEADER_OVERFLOW':
      return { status: 431, body: errorBody(HttpErrorCode.HeadersTooLarge, 'the request headers are too large') };
    case 'ERR_HTTP_REQUEST_TIMEOUT':
      return { status: 408, body: errorBody(HttpErrorCode.RequestTimeout, 'the request was not received in time') };
    default:
      return { status: 400, body: errorBody(HttpErrorCode.BadRequest, 'malformed HTTP request') };
  }
}

/** An error as raw HTTP/1.1 bytes, for a socket no fastify reply exists for; the connection closes. */
export function rawErrorResponse(e: HttpError): string {
  const body = JSON.stringify(e.body);
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\n` +
    'Content-Type: application/json; charset=utf-8\r\n' +
    `Content-Length: ${Buffer.byteLength(body)}\r\n` +
    'Connection: close\r\n\r\n' +
    body
  );
}
