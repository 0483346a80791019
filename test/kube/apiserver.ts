/**
 * The Kubernetes API stand-in used by these tests. It lives in src/kube/apiserver.ts so the lab
 * (src/lab) can run it too without importing from test/; this module only re-exports it.
 */
export * from '../../src/kube/apiserver.js';
