// Prints the README's configuration reference (a Markdown table) from the settings table, so the
// documentation cannot drift from the parser: `npx tsx scripts/config-reference.ts`.

import { SETTINGS_TABLE } from '../src/config/settings.js';

const rows = ['| key | default | meaning | origin |', '| --- | --- | --- | --- |'];
for (const s of SETTINGS_TABLE) {
  const def = s.default === '' ? '(empty)' : `\`${s.default}\``;
  const origin = s.origin === 'pgbouncer' ? `PgBouncer-compatible${s.pgbouncerDefault !== undefined ? ` (PgBouncer's default: ${s.pgbouncerDefault === '' ? 'empty' : '`' + s.pgbouncerDefault + '`'})` : ''}` : 'pgrelay-only';
  rows.push(`| \`${s.key}\` | ${def} | ${s.description.replace(/\|/g, '\\|')}${s.reload ? '' : ' (restart to change)'} | ${origin} |`);
}
console.log(rows.join('\n'));
