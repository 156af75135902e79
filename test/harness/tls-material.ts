import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { promisify } from 'node:util';
import { hostState, trackDir } from './process-registry';

const run = promisify(execFile);

/** Test PKI generated with openssl: a CA, a server cert and a client cert signed by it. */
export interface TlsMaterial {
  /** Directory holding every file below. */
  readonly dir: string;
  readonly caFile: string;
  /** CA certificate (PEM): pass as `tls: { ca }` to trust the server. */
  readonly ca: string;
  /** Server certificate (PEM) for CN=127.0.0.1, SAN IP:127.0.0.1 and DNS:localhost. */
  readonly cert: string;
  readonly certFile: string;
  /** Server private key (PEM). */
  readonly key: string;
  readonly keyFile: string;
  /** Client certificate (PEM, CN=redwing-test-client) for mutual-TLS tests. */
  readonly clientCert: string;
  readonly clientCertFile: string;
  /** Client private key (PEM). */
  readonly clientKey: string;
  readonly clientKeyFile: string;
}

const REQ_CONFIG = `[req]
distinguished_name = dn
prompt = no
[dn]
CN = redwing
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
`;

const SERVER_EXT = `basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = serverAuth, clientAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
authorityKeyIdentifier = keyid, issuer
`;

const CLIENT_EXT = `basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature, keyEncipherment
extendedKeyUsage = clientAuth
authorityKeyIdentifier = keyid, issuer
`;

// P-256 keys: generated in milliseconds, accepted by redis-server (OpenSSL 3) and Node.
const NEW_KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir, timeout: 20_000 });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

async function issue(dir: string, name: string, cn: string, extFile: string): Promise<void> {
  await openssl(dir, [
    'req',
    '-new',
    ...NEW_KEY,
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.csr`,
    '-subj',
    `/CN=${cn}`,
    '-config',
    'req.cnf',
  ]);
  await openssl(dir, [
    'x509',
    '-req',
    '-in',
    `${name}.csr`,
    '-CA',
    'ca.crt',
    '-CAkey',
    'ca.key',
    '-set_serial',
    '0x' + randomBytes(8).toString('hex'),
    '-days',
    '3',
    '-sha256',
    '-extfile',
    extFile,
    '-out',
    `${name}.crt`,
  ]);
}

async function generate(): Promise<TlsMaterial> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redwing-test-tls-'));
  trackDir(dir);
  fs.writeFileSync(path.join(dir, 'req.cnf'), REQ_CONFIG);
  fs.writeFileSync(path.join(dir, 'server.ext'), SERVER_EXT);
  fs.writeFileSync(path.join(dir, 'client.ext'), CLIENT_EXT);
  await openssl(dir, [
    'req',
    '-x509',
    '-new',
    ...NEW_KEY,
    '-keyout',
    'ca.key',
    '-out',
    'ca.crt',
    '-days',
    '3',
    '-sha256',
    '-subj',
    '/CN=Redwing Test CA',
    '-config',
    'req.cnf',
    '-extensions',
    'v3_ca',
  ]);
  await issue(dir, 'server', '127.0.0.1', 'server.ext');
  await issue(dir, 'client', 'redwing-test-client', 'client.ext');
  const file = (name: string): string => path.join(dir, name);
  const read = (name: string): string => fs.readFileSync(file(name), 'utf8');
  return {
    dir,
    caFile: file('ca.crt'),
    ca: read('ca.crt'),
    certFile: file('server.crt'),
    cert: read('server.crt'),
    keyFile: file('server.key'),
    key: read('server.key'),
    clientCertFile: file('client.crt'),
    clientCert: read('client.crt'),
    clientKeyFile: file('client.key'),
    clientKey: read('client.key'),
  };
}

/**
 * The test CA, server and client certificates, generated with `openssl` on first use and cached
 * for the lifetime of the process (the directory is deleted at exit).
 */
export function tlsMaterial(): Promise<TlsMaterial> {
  const cache = hostState().cache;
  let pending = cache.get('tls') as Promise<TlsMaterial> | undefined;
  if (!pending) {
    pending = generate();
    cache.set('tls', pending);
    // A failed generation is not cached, so the next caller retries.
    pending.catch(() => cache.delete('tls'));
  }
  return pending;
}
