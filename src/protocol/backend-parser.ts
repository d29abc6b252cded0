// node-postgres's pg-protocol backend-message parser, for pgrelay's own upstream logins (the
// forwarding path never parses). Loaded with require() for the reason frontend-messages.ts gives.

import { createRequire } from 'node:module';
import type * as PgParser from 'pg-protocol/dist/parser';

const require = createRequire(import.meta.url);
const parser = require('pg-protocol/dist/parser') as typeof PgParser;

export const Parser: typeof PgParser.Parser = parser.Parser;
export type { BackendMessage } from 'pg-protocol/dist/messages';
