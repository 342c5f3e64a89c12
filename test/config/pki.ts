// A small private PKI made with openssl, the way make-certs.sh's header tells operators to make their own.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** Writes ca.crt, edge.crt/.key, gateway-client.crt/.key into dir (own CA, not the example one). */
export function makeOwnPki(dir: string): void {
  const key = (name: string) =>
    openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', join(dir, `${name}.key`)]);
  key('ca');
  openssl([
    'req', '-new', '-x509', '-key', join(dir, 'ca.key'), '-sha256', '-days', '30',
    '-subj', '/O=Example Corp/CN=Example Corp Test CA', '-out', join(dir, 'ca.crt'),
  ]);
  const leaf = (name: string, cn: string, eku: string) => {
    key(name);
    openssl(['req', '-new', '-key', join(dir, `${name}.key`), '-subj', `/O=Example Corp/CN=${cn}`, '-out', join(dir, `${name}.csr`)]);
    writeFileSync(
      join(dir, `${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\nsubjectAltName=DNS:${cn}\n`,
    );
    openssl([
      'x509', '-req', '-in', join(dir, `${name}.csr`), '-CA', join(dir, 'ca.crt'), '-CAkey', join(dir, 'ca.key'),
      '-CAcreateserial', '-days', '30', '-sha256', '-extfile', join(dir, `${name}.ext`), '-out', join(dir, `${name}.crt`),
    ]);
  };
  leaf('edge', 'gateway.example.com', 'serverAuth');
  leaf('gateway-client', 'mlgate-gateway.example.com', 'clientAuth');
}
