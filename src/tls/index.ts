// Edge and upstream TLS material, and the guard that keeps example certificates out of production.
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SecureContextOptions, TlsOptions } from 'node:tls';

// Mozilla "intermediate": forward-secret AEAD suites only for TLS 1.2 (1.3 suites are always on).
const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
].join(':');

export interface EdgeTlsFiles {
  certFile: string;
  keyFile: string;
  minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export function edgeTlsOptions(files: EdgeTlsFiles): TlsOptions & SecureContextOptions {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    minVersion: files.minVersion,
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
}

/** The example certificates (certs-example), to recognise them and anything they signed. */
export interface ExampleCertificates {
  fingerprints: Set<string>;
  cas: X509Certificate[];
}

export function fingerprintsIn(dir: string): ExampleCertificates {
  const out: ExampleCertificates = { fingerprints: new Set(), cas: [] };
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.endsWith('.crt')) continue;
    try {
      const cert = new X509Certificate(readFileSync(join(dir, name)));
      out.fingerprints.add(cert.fingerprint256);
      if (cert.ca) out.cas.push(cert);
    } catch {
      // not a certificate
    }
  }
  return out;
}

const EXAMPLE_MARK = /NOT FOR PRODUCTION/i;

/**
 * True for an example certificate wherever it was copied (by fingerprint), for any certificate the public example
 * CA key signed, and for anything make-certs.sh made (its subject says NOT FOR PRODUCTION).
 */
export function isExampleCertificate(file: string, examples: ExampleCertificates): boolean {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(readFileSync(file));
  } catch {
    return false;
  }
  if (examples.fingerprints.has(cert.fingerprint256)) return true;
  if (EXAMPLE_MARK.test(cert.subject) || EXAMPLE_MARK.test(cert.issuer)) return true;
  return examples.cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey));
}
