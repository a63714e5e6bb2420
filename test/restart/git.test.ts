/**
 * git under kill -9 of the serving daemon: a repository made here (40 commits over ~600 files, with
 * renames and deletions; fixed dates) lies in a lower branch; through the mount it is cloned twice
 * (the default local clone, which hard-links the lower object files, copying them up; and
 * --no-hardlinks), each clone checked out at old commits and back (three times), then `git status --porcelain`
 * must be empty, `git fsck --full --strict` clean and the history whole. Then the merged tree must
 * equal the run without kills (left out: the clones' .git/index, which holds inode numbers and ctimes, and
 * .git/config and .git/logs, which hold the source's absolute path).
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { childFailure, runChild } from './kill-loop.js';
import { rng } from './rng.js';
import { twoRuns } from './two-runs.js';

const GIT_ENV = {
  GIT_AUTHOR_NAME: 'k',
  GIT_AUTHOR_EMAIL: 'k@example.com',
  GIT_COMMITTER_NAME: 'k',
  GIT_COMMITTER_EMAIL: 'k@example.com',
  GIT_AUTHOR_DATE: '2026-01-01T00:00:00Z',
  GIT_COMMITTER_DATE: '2026-01-01T00:00:00Z',
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
  HOME: '/nonexistent',
};
let work = '';
let source = '';

function makeRepo(repo: string): void {
  const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { env: { ...process.env, ...GIT_ENV }, stdio: ['ignore', 'pipe', 'pipe'] });
  mkdirSync(repo);
  git('init', '-q', '-b', 'main');
  const rand = rng(42);
  const files: string[] = [];
  for (let c = 0; c < 40; c++) {
    const n = c === 0 ? 500 : 15;
    for (let i = 0; i < n; i++) {
      const p = files.length && rand() < 0.5 ? files[Math.floor(rand() * files.length)]! : `m${Math.floor(rand() * 8)}/f${c}-${i}.txt`;
      mkdirSync(join(repo, p, '..'), { recursive: true });
      writeFileSync(join(repo, p), `commit ${c} file ${i} ${'x'.repeat(Math.floor(rand() * 3000))}\n`);
      if (!files.includes(p)) files.push(p);
    }
    if (c % 5 === 4) {
      const gone = files.splice(Math.floor(rand() * files.length), 1)[0]!;
      unlinkSync(join(repo, gone));
      const from = files.splice(Math.floor(rand() * files.length), 1)[0]!;
      const to = `moved/${c}.txt`;
      mkdirSync(join(repo, 'moved'), { recursive: true });
      renameSync(join(repo, from), join(repo, to));
      files.push(to);
    }
    git('add', '-A');
    git('commit', '-q', '-m', `commit ${c}`);
  }
  git('gc', '-q');
}

before(() => {
  work = mkdtempSync(join(tmpdir(), 'layerfs-git-src-'));
  source = join(work, 'src');
  makeRepo(source);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

const SCRIPT = `set -euo pipefail
step() { echo "step: $*" >&2; }
for c in clone1:"" clone2:--no-hardlinks; do
  dir=\${c%%:*}; flag=\${c#*:}
  step "git clone $flag src $dir"; git clone -q $flag src $dir
  for back in 25 10 35; do
    step "git -C $dir checkout HEAD~$back"; git -C $dir checkout -q HEAD~$back
    step "git -C $dir checkout main"; git -C $dir checkout -q main
  done
  step "git -C $dir status --porcelain"; out=$(git -C $dir status --porcelain)
  [ -z "$out" ] || { echo "git status --porcelain in $dir is not empty: $out" >&2; exit 1; }
  step "git -C $dir fsck --full --strict"; git -C $dir fsck --full --strict --no-progress
  step "git -C $dir rev-list --count HEAD"; n=$(git -C $dir rev-list --count HEAD)
  [ "$n" = 40 ] || { echo "$dir: $n commits, want 40" >&2; exit 1; }
  step "git -C $dir diff --stat src"; [ "$(git -C $dir rev-parse HEAD)" = "$(git -C src rev-parse HEAD)" ]
done
step "git -C src status --porcelain (the lower repo, through the mount)"; [ -z "$(git -C src status --porcelain)" ]
`;

twoRuns(
  {
    name: 'git',
    fill(_lo1, lo2) {
      cpSync(source, join(lo2, 'src'), { recursive: true, preserveTimestamps: true });
    },
    // .git/index: stat data (inode numbers, ctimes) of the tracked files, different in any two clones;
    // .git/config and .git/logs: the absolute path of the source (the mount point differs per run)
    ignore: ['src/.git/index', ...['clone1', 'clone2'].flatMap((c) => [`${c}/.git/index`, `${c}/.git/config`, `${c}/.git/logs`])],
    async run(u) {
      const r = await runChild(u, ['/bin/bash', '-c', SCRIPT], { cwd: u.mnt, env: { ...u.env, ...GIT_ENV }, timeoutMs: 120_000 });
      if (r.status !== 0) {
        const steps = r.stderr.split('\n').filter((l) => l.startsWith('step: '));
        throw new Error(`${childFailure('git workload', r)} (last step: ${steps[steps.length - 1]?.slice(6) ?? 'none'})`);
      }
    },
  },
  180_000,
);

