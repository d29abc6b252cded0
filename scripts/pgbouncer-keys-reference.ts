// Prints the README's list of PgBouncer keys pgrelay does not implement, from the table the loader
// uses (src/config/pgbouncer-keys.ts), minus the keys the settings table implements:
// `npx tsx scripts/pgbouncer-keys-reference.ts`. test/config/snippets.test.ts keeps them equal.

import { pgbouncerKeysReference } from '../src/config/pgbouncer-keys-reference.js';

console.log(pgbouncerKeysReference());
