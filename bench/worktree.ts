// Another revision of pgrelay, built beside this checkout for a before/after comparison: a scratch
// git worktree with dist/ built, sharing this checkout's node_modules. Used by ab.ts and
// instructions.ts.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

export interface BuiltRevision {
  readonly dir: string;
  readonly sha: string;
  /** Removes the worktree. */
  remove(): void;
}

/** A worktree of `rev` with dist/ built. */
export function buildRevision(rev: string): BuiltRevision {
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: REPO, encoding: 'utf8' }).trim();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `pgrelay-ab-${sha}-`));
  execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: REPO, stdio: 'ignore' });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  execFileSync(path.join(REPO, 'node_modules', '.bin', 'tsc'), ['-p', 'tsconfig.build.json'], { cwd: dir, stdio: 'inherit' });
  return { dir, sha, remove: () => execFileSync('git', ['worktree', 'remove', '--force', dir], { cwd: REPO, stdio: 'ignore' }) };
}

/** This checkout's short commit, with "+dirty" when src/ has uncommitted changes; builds dist/ first. */
export function buildCheckout(): string {
  execFileSync('npm', ['run', '--silent', 'build'], { cwd: REPO, stdio: 'inherit' });
  const head = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8' }).trim();
  const dirty = execFileSync('git', ['status', '--porcelain', 'src'], { cwd: REPO, encoding: 'utf8' }).trim() !== '';
  return `${head}${dirty ? '+dirty' : ''}`;
}
