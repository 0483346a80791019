/**
 * Certificates for tests, made at test time with `openssl`: a self-signed CA and a server
 * certificate it signs, for 127.0.0.1, ::1 and localhost. Nothing is checked in, so nothing
 * expires in the repository, and every run has its own keys. A second call makes an unrelated CA,
 * which is how a test gets "the wrong CA".
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TestCertificates {
  /** PEM: the CA certificate a client must trust. */
  readonly ca: string;
  /** PEM: the server certificate, signed by `ca`. */
  readonly cert: string;
  /** PEM: the server's private key. */
  readonly key: string;
}

/**
 * A fresh CA and a server certificate for `altNames` (default: the loopback names, in openssl's
 * subjectAltName syntax). Needs `openssl` on PATH.
 */
export function makeTestCertificates(commonName = 'vxnet-test-ca', altNames = 'IP:127.0.0.1,IP:::1,DNS:localhost'): TestCertificates {
  const dir = mkdtempSync(join(tmpdir(), 'vxnet-tls-'));
  const f = (name: string): string => join(dir, name);
  const openssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
  try {
    // EC P-256 keys: fast to generate, accepted by every TLS stack the client can use.
    openssl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2',
      '-subj', `/CN=${commonName}`, '-keyout', f('ca.key'), '-out', f('ca.crt'),
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign');
    openssl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-subj', '/CN=kube-apiserver',
      '-keyout', f('server.key'), '-out', f('server.csr'));
    writeFileSync(f('ext.cnf'), [
      'basicConstraints=CA:FALSE',
      'keyUsage=critical,digitalSignature,keyEncipherment',
      'extendedKeyUsage=serverAuth',
      `subjectAltName=${altNames}`,
      '',
    ].join('\n'));
    openssl('x509', '-req', '-in', f('server.csr'), '-CA', f('ca.crt'), '-CAkey', f('ca.key'), '-CAcreateserial',
      '-days', '2', '-extfile', f('ext.cnf'), '-out', f('server.crt'));
    return { ca: readFileSync(f('ca.crt'), 'utf8'), cert: readFileSync(f('server.crt'), 'utf8'), key: readFileSync(f('server.key'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
