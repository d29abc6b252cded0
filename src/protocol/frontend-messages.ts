// node-postgres's pg-protocol for pgrelay's own upstream traffic: frontend-message serialization
// (login, internal queries, cancel) and the backend-message parser used during server login.
// Loaded with require(): the package is CommonJS behind an ESM wrapper, and ESM loaders
// (tsx, ts-node, plain node) disagree about its named exports.

import { createRequire } from 'node:module';
import type * as PgProtocol from 'pg-protocol';
import type * as PgParser from 'pg-protocol/dist/parser';

const require = createRequire(import.meta.url);
const protocol = require('pg-protocol') as typeof PgProtocol;
const parser = require('pg-protocol/dist/parser') as typeof PgParser;

export const serialize: typeof PgProtocol.serialize = protocol.serialize;
export const Parser: typeof PgParser.Parser = parser.Parser;
export type { BackendMessage } from 'pg-protocol/dist/messages';
