// node-postgres's pg-protocol for pgrelay's own upstream traffic: frontend-message serialization
// (login, internal queries, cancel). The backend parser is in backend-parser.ts.
// Loaded with require(): the package is CommonJS behind an ESM wrapper, and ESM loaders
// (tsx, ts-node, plain node) disagree about its named exports.

import { createRequire } from 'node:module';
import type * as PgProtocol from 'pg-protocol';

const require = createRequire(import.meta.url);
const protocol = require('pg-protocol') as typeof PgProtocol;

export const serialize: typeof PgProtocol.serialize = protocol.serialize;
