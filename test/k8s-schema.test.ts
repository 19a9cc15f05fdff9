// docker/k8s/mtlface.yaml against the Kubernetes 1.33 API, offline, with the npm package
// kubernetes-models 4.5.1 (generated from the Kubernetes OpenAPI schema; the version is read off its
// schemas: Lifecycle.stopSignal and networking.k8s.io/v1 ServiceCIDR, both new in 1.33, are there,
// 1.34's PodSpec.hostnameOverride is not).
// Two checks, each shown to reject a broken copy of the manifest:
// - types, formats and required fields: the package's compiled JSON-schema validators;
// - unknown fields (what `kubectl apply`'s strict field validation refuses, e.g. a misspelt key):
//   the OpenAPI schema leaves objects open, so the manifest is type-checked as an object literal
//   against the package's TypeScript interfaces, whose excess-property check names every unknown key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import ts from 'typescript';
import { Job } from 'kubernetes-models/batch/v1/Job';
import { Service } from 'kubernetes-models/v1/Service';
import { REPO_ROOT } from './support/launch.js';
import { k8sManifest } from './support/k8s.js';

const MODELS: Record<string, { model: new (d: any) => { validate(): void }; type: string; module: string }> =
  {
    'batch/v1 Job': { model: Job, type: 'IJob', module: 'kubernetes-models/batch/v1/Job' },
    'v1 Service': { model: Service, type: 'IService', module: 'kubernetes-models/v1/Service' },
  };

function modelOf(doc: any) {
  const m = MODELS[`${doc.apiVersion} ${doc.kind}`];
  assert.ok(m, `${doc.apiVersion} ${doc.kind}: a kind this test knows`);
  return m;
}

/** The schema validator's complaint about `doc`, or undefined. */
function schemaError(doc: any): string | undefined {
  try {
    new (modelOf(doc).model)(doc).validate();
    return undefined;
  } catch (e) {
    return (e as Error).message;
  }
}

/** TypeScript's diagnostics for `doc` written as a literal of its kind's interface. */
function unknownFields(doc: any): string[] {
  const m = modelOf(doc);
  // Never written to disk: a source file served to the compiler, placed in the repository so that
  // kubernetes-models resolves from node_modules.
  const file = join(REPO_ROOT, 'test', '__manifest_document__.ts');
  const text = `import type { ${m.type} } from '${m.module}';\nexport const doc: ${m.type} = ${JSON.stringify(doc, null, 2)};\n`;
  const options: ts.CompilerOptions = {
    noEmit: true,
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    types: [],
    skipLibCheck: true,
  };
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  host.getSourceFile = (name, lang, ...rest) =>
    name === file ? ts.createSourceFile(name, text, lang) : getSourceFile(name, lang, ...rest);
  const fileExists = host.fileExists.bind(host);
  host.fileExists = (name) => name === file || fileExists(name);
  const program = ts.createProgram([file], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n').split('\n').at(-1)!);
}

test('kubernetes: the manifest validates against the Kubernetes 1.33 OpenAPI schema', () => {
  const { docs } = k8sManifest();
  assert.deepEqual(
    docs.map((d) => d.kind),
    ['Service', 'Job'],
  );
  for (const doc of docs) assert.equal(schemaError(doc), undefined, `${doc.kind}`);

  // The validator does reject what the API server would: a string port, a container without a name.
  const job = docs.find((d) => d.kind === 'Job');
  const badPort = structuredClone(job);
  badPort.spec.template.spec.containers[0].ports[0].containerPort = '29500';
  assert.match(schemaError(badPort) ?? '', /containers\/0\/ports\/0\/containerPort must be integer/);
  const noName = structuredClone(job);
  delete noName.spec.template.spec.containers[0].name;
  assert.match(schemaError(noName) ?? '', /containers\/0 must have required property '?name'?/);
});

test('kubernetes: the manifest has no field the Kubernetes 1.33 API does not know', () => {
  const { docs } = k8sManifest();
  for (const doc of docs) assert.deepEqual(unknownFields(doc), [], `${doc.kind}`);
  // A misspelt key deep in the pod template is named.
  const job = structuredClone(docs.find((d) => d.kind === 'Job'));
  job.spec.template.spec.containers[0].volumeMount = job.spec.template.spec.containers[0].volumeMounts;
  const found = unknownFields(job);
  assert.equal(found.length, 1, found.join('\n'));
  assert.match(found[0]!, /'"volumeMount"' does not exist in type 'IContainer'/);
});
