/** Slurm: placement from the job's environment when the user gave none. */
export interface SlurmPlacement {
  nnodes: number;
  nodeRank: number;
  masterAddr: string;
}

/**
 * Expands a Slurm hostlist: `node[01-04,07],gpu3,rack[1-2]-n[5-6]` → every host name, in order,
 * zero padding kept (`node[08-10]` → node08 node09 node10).
 */
export function expandHostlist(list: string): string[] {
  const hosts: string[] = [];
  for (const item of splitTopLevel(list)) hosts.push(...expandOne(item));
  return hosts;
}

function splitTopLevel(list: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let cur = '';
  for (const ch of list) {
    if (ch === '[') depth++;
    else if (ch === ']') depth--;
    if (depth < 0) throw new SyntaxError(`hostlist '${list}': unbalanced ']'`);
    if (ch === ',' && depth === 0) {
      if (cur.trim() !== '') out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (depth !== 0) throw new SyntaxError(`hostlist '${list}': unbalanced '['`);
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

function expandOne(item: string): string[] {
  const open = item.indexOf('[');
  if (open < 0) return [item];
  const close = item.indexOf(']', open);
  const prefix = item.slice(0, open);
  const rest = expandOne(item.slice(close + 1));
  const out: string[] = [];
  for (const range of item.slice(open + 1, close).split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(range.trim());
    if (!m) throw new SyntaxError(`hostlist item '${item}': bad range '${range}'`);
    const lo = m[1] ?? '';
    const hi = m[2] ?? lo;
    const width = lo.length;
    if (Number(hi) < Number(lo))
      throw new SyntaxError(`hostlist item '${item}': range '${range}' runs backwards`);
    for (let n = Number(lo); n <= Number(hi); n++) {
      for (const tail of rest) out.push(prefix + String(n).padStart(width, '0') + tail);
    }
  }
  return out;
}

/** The placement Slurm gives this job step, or undefined outside Slurm. */
export function slurmPlacement(env: NodeJS.ProcessEnv): SlurmPlacement | undefined {
  if (env.SLURM_JOB_ID === undefined) return undefined;
  const nodelist = env.SLURM_JOB_NODELIST ?? env.SLURM_NODELIST;
  const nnodes = Number(env.SLURM_NNODES ?? env.SLURM_JOB_NUM_NODES);
  const nodeRank = Number(env.SLURM_NODEID);
  if (nodelist === undefined || !Number.isInteger(nnodes) || !Number.isInteger(nodeRank)) return undefined;
  const first = expandHostlist(nodelist)[0];
  if (first === undefined) return undefined;
  return { nnodes, nodeRank, masterAddr: first };
}
