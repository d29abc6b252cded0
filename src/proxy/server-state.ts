// The states of a server connection and the frames its scanner reads in each of them (the
// tracking modes are in reply-tracking.ts). Changed only by ServerConn's setState().

import { frameModes } from '../protocol/frame-scanner.js';
import { Backend } from '../protocol/message-types.js';

/** Lifecycle of a server connection: idle in the pool, linked to a client, busy with our own query, closed. */
export const ServerState = { idle: 'idle', active: 'active', internal: 'internal', closed: 'closed' } as const;
export type ServerState = (typeof ServerState)[keyof typeof ServerState];

export const SERVER_FRAMES = frameModes(
  [],
  [Backend.ReadyForQuery, Backend.ParameterStatus, Backend.ErrorResponse, Backend.CopyInResponse, Backend.CopyBothResponse],
);

/** Also reads CommandComplete tags: pgrelay's own queries, and links whose session settings pgrelay SET. */
export const OBSERVING_SERVER_FRAMES = frameModes(
  [],
  [Backend.ReadyForQuery, Backend.ParameterStatus, Backend.ErrorResponse, Backend.CopyInResponse, Backend.CopyBothResponse, Backend.CommandComplete],
);
