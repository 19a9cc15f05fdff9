// Node flags that run this repository from its TypeScript sources (no build needed):
// the `mtl-source` export condition points every @mtlface/* package at src/, and tsx
// compiles .ts on load. Tests and benchmarks spawn child processes with these.
export const SOURCE_EXEC_ARGV = ['--conditions=mtl-source', '--import', 'tsx'];
