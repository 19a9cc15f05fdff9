/**
 * Test helpers: what the kubelet would run for a pod of docker/k8s/mtlface.yaml's Indexed Job,
 * outside a cluster: the container's command and args with `$(VAR)` expanded from the pod's env
 * (the completion index → NODE_RANK, secretKeyRef values from `secrets`), as the kubelet does.
 *
 *   const m = k8sManifest();
 *   const pod = m.pod(0, { 'mtlface-token': { token: 's' } }, { CONFIG: 'configs/demo-smoke.yaml' });
 *   pod.argv;  // ['node', '/app/bin/mtl-launch.js', '--nnodes=2', '--node-rank=0', ...]
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { REPO_ROOT } from './launch.js';

export const MANIFEST = join(REPO_ROOT, 'docker', 'k8s', 'mtlface.yaml');

export interface K8sPod {
  argv: string[];
  env: Record<string, string>;
  volumeMounts: Array<{ name: string; mountPath: string }>;
}

export interface K8sManifest {
  /** Every document of the manifest, as plain objects. */
  docs: any[];
  svc: any;
  job: any;
  /** Pod 0's stable DNS name through the headless Service: the master address. */
  masterName: string;
  /** Pod `index`'s command line and environment; `set` replaces plain `value` entries (e.g. CONFIG). */
  pod(index: number, secrets: Record<string, Record<string, string>>, set?: Record<string, string>): K8sPod;
}

export function k8sManifest(): K8sManifest {
  const docs = parseAllDocuments(readFileSync(MANIFEST, 'utf8')).map((d) => d.toJS());
  const svc = docs.find((d) => d.kind === 'Service');
  const job = docs.find((d) => d.kind === 'Job');
  const spec = job.spec.template.spec;
  const container = spec.containers[0];
  assert.equal(spec.subdomain, svc.metadata.name, 'pods resolvable through the headless service');
  return {
    docs,
    svc,
    job,
    masterName: `${job.metadata.name}-0.${spec.subdomain}`,
    pod(index, secrets, set = {}) {
      const env: Record<string, string> = {};
      for (const e of container.env as Array<{ name: string; value?: string; valueFrom?: any }>) {
        if (e.value !== undefined) env[e.name] = set[e.name] ?? e.value;
        else if (
          e.valueFrom?.fieldRef?.fieldPath ===
          "metadata.annotations['batch.kubernetes.io/job-completion-index']"
        )
          env[e.name] = String(index);
        else if (e.valueFrom?.secretKeyRef) {
          const { name, key } = e.valueFrom.secretKeyRef;
          const v = secrets[name]?.[key];
          assert.ok(v !== undefined, `secret ${name}/${key}`);
          env[e.name] = v;
        } else assert.fail(`env ${e.name}: a source this test does not emulate: ${JSON.stringify(e)}`);
      }
      // Kubernetes expands $(VAR) from the container's env; $$ is a literal $.
      const expand = (s: string): string =>
        s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (m, name?: string) =>
          m === '$$' ? '$' : name !== undefined && name in env ? env[name]! : m,
        );
      const argv = [...(container.command as string[]), ...(container.args as string[])].map(expand);
      assert.ok(!argv.some((a) => a.includes('$(')), `every $(VAR) defined: ${argv.join(' ')}`);
      return { argv, env, volumeMounts: container.volumeMounts };
    },
  };
}
