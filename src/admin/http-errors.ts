// The HTTP admin API's error catalogue and the one mapping from anything thrown to a status and a
// `{"error":{"code","message","field"?}}` body. Internal details never reach the response.

import { AdminError } from './control.js';

export const HttpErrorCode = {
  BadRequest: 'PGRELAY_BAD_REQUEST',
  Unauthorized: 'PGRELAY_UNAUTHORIZED',
  NotFound: 'PGRELAY_NOT_FOUND',
  MethodNotAllowed: 'PGRELAY_METHOD_NOT_ALLOWED',
  PayloadTooLarge: 'PGRELAY_PAYLOAD_TOO_LARGE',
  UnsupportedMediaType: 'PGRELAY_UNSUPPORTED_MEDIA_TYPE',
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
    case 413:
      return HttpErrorCode.PayloadTooLarge;
    case 415:
      return HttpErrorCode.UnsupportedMediaType;
    default:
      return HttpErrorCode.BadRequest;
  }
}
