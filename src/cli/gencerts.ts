// mlgate gen-certs: a private CA and the three certificates mlgate needs, made with openssl.
// For a first deployment or a lab; an organisation's own PKI is better where there is one.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export interface GenCertsOptions {
  dir: string;
  /** Names and addresses of the gateway's HTTPS certificate. */
  edgeHosts: string[];
  /** Names and addresses of the node certificates (one certificate for all, as a lab shortcut). */
  nodeHosts: string[];
  days: number;
  /** Replace an existing set. */
  force?: boolean;
}

const openssl = (args: string[]): void => {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
};

const san = (hosts: string[]): string =>
  hosts.map((h) => (/^[\d.]+$/.test(h) || h.includes(':') ? `IP:${h}` : `DNS:${h}`)).join(',');

/** Writes ca.crt/.key, edge.crt/.key, node.crt/.key, gateway-client.crt/.key (EC P-256, keys mode 600). */
export function genCerts(o: GenCertsOptions): string[] {
  if (!o.force && existsSync(join(o.dir, 'ca.key'))) throw new Error(`${o.dir} already holds a CA; pass --force to replace it`);
  mkdirSync(o.dir, { recursive: true });
  const file = (n: string) => join(o.dir, n);
  const key = (name: string) => openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(`${name}.key`)]);
  key('ca');
  openssl(['req', '-new', '-x509', '-key', file('ca.key'), '-sha256', '-days', String(o.days + 1), '-subj', '/CN=mlgate private CA',
    '-addext', 'basicConstraints=critical,CA:TRUE,pathlen:0', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', file('ca.crt')]);
  const leaf = (name: string, cn: string, eku: string, hosts?: string[]) => {
    key(name);
    openssl(['req', '-new', '-key', file(`${name}.key`), '-subj', `/CN=${cn}`, '-out', file(`${name}.csr`)]);
    writeFileSync(
      file(`${name}.ext`),
      `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=${eku}\n${hosts?.length ? `subjectAltName=${san(hosts)}\n` : ''}`,
    );
    openssl(['x509', '-req', '-in', file(`${name}.csr`), '-CA', file('ca.crt'), '-CAkey', file('ca.key'),
      '-set_serial', `0x${execFileSync('openssl', ['rand', '-hex', '16']).toString().trim()}`, '-days', String(o.days), '-sha256',
      '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`)]);
  };
  leaf('edge', o.edgeHosts[0] ?? 'localhost', 'serverAuth', o.edgeHosts);
  leaf('node', o.nodeHosts[0] ?? 'localhost', 'serverAuth', o.nodeHosts);
  leaf('gateway-client', 'mlgate-gateway', 'clientAuth');
  execFileSync('chmod', ['600', ...['ca', 'edge', 'node', 'gateway-client'].map((n) => file(`${n}.key`))]);
  return ['ca.crt', 'edge.crt', 'node.crt', 'gateway-client.crt'].map(file);
}
