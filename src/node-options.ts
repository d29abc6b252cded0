// The node options pgrelay runs with: the Docker image's ENTRYPOINT, the npm bin's shebang, the
// benchmarks and the demos all use this list (test/deploy/manifests.test.ts checks the first two).
//
// --max-semi-space-size=8: V8's young generation grows to 16 MB semi-spaces during a burst of
// logins and keeps them, about 1.8 KB of resident memory per client at 10,000 idle clients. At
// 8 MB the idle client costs about 3.8 KB instead of 4.7 KB, and proxy CPU per transaction at
// a fixed pgbench rate was unchanged or lower (bench/ab.ts --rate 10000 at c = 16 and 256).
export const NODE_OPTIONS: readonly string[] = ['--max-semi-space-size=8'];
