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

/** SHA-256 fingerprints of every certificate in a folder (certs-example). */
export function fingerprintsIn(dir: string): Set<string> {
  const out = new Set<string>();
  let names: string[] = [];
  try {
    names = readdirSync(dir);
  } catch {
    return out;
  }
  for (const name of names) {
    if (!name.endsWith('.crt')) continue;
    try {
      out.add(new X509Certificate(readFileSync(join(dir, name))).fingerprint256);
    } catch {
      // not a certificate
    }
  }
  return out;
}

/** True when the PEM file holds one of the example certificates (compared by content, not by path). */
export function isExampleCertificate(file: string, exampleFingerprints: Set<string>): boolean {
  try {
    return exampleFingerprints.has(new X509Certificate(readFileSync(file)).fingerprint256);
  } catch {
    return false;
  }
}
