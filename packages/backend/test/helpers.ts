// The comparison utilities live in src/testing.ts (exported as @mtlface/backend/testing).
export * from '../src/testing.js';
