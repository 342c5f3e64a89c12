// Certificates for the benchmark: a throwaway CA of its own (production mode refuses certs-example and make-certs output).
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

const openssl = (args: string[]): void => {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

/** Writes ca.crt, edge.*, node.*, gateway-client.* into dir (same names as certs-example). */
export function makeBenchPki(dir: string): void {
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, `${name}.key`)]);
  key('ca');
  openssl(['req', '-new', '-x509', '-key', join(dir, 'ca.key'), '-sha256', '-days', '2', '-subj', '/CN=mlgate bench CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', join(dir, 'ca.crt')]);
  const leaf = (name: string, cn: string, eku: string, san?: string) => {
    key(name);
    openssl(['req', '-new', '-key', join(dir, `${name}.key`), '-subj', `/CN=${cn}`, '-out', join(dir, `${name}.csr`)]);
    writeFileSync(join(dir, `${name}.ext`), `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\n${san ? `subjectAltName=${san}\n` : ''}`);
    openssl(['x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
      '-set_serial', `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}`, '-days', '2', '-sha256', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`)]);
  };
  leaf('edge', 'localhost', 'serverAuth', 'DNS:localhost,IP:127.0.0.1');
  leaf('node', 'localhost', 'serverAuth', 'DNS:localhost,IP:127.0.0.1');
  leaf('gateway-client', 'mlgate-bench-gateway', 'clientAuth');
}
