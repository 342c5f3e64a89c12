// Edge and upstream TLS material, and the guard that keeps example certificates out of production.
import { createHash, createPrivateKey, createPublicKey, X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync, watch, type FSWatcher } from 'node:fs';
import { dirname, join } from 'node:path';
import { createSecureContext, type SecureContextOptions, type Server as TlsServer, type TlsOptions } from 'node:tls';

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
  clientCaFile?: string | undefined;
  requestClientCert?: boolean | undefined;
  requireClientCert?: boolean | undefined;
}

/** What goes into the secure context: read again on every reload. */
export function edgeContextOptions(files: EdgeTlsFiles): SecureContextOptions {
  return {
    cert: readFileSync(files.certFile),
    key: readFileSync(files.keyFile),
    ...(files.clientCaFile ? { ca: readFileSync(files.clientCaFile) } : {}),
    // TLS 1.0 and 1.1 are never negotiated, whatever minVersion says.
    minVersion: files.minVersion,
    ciphers: TLS12_CIPHERS,
    honorCipherOrder: true,
  };
}

export function edgeTlsOptions(files: EdgeTlsFiles): TlsOptions & SecureContextOptions {
  const askCert = Boolean(files.requestClientCert || files.requireClientCert);
  return {
    ...edgeContextOptions(files),
    requestCert: askCert,
    // requestClientCert alone: the handshake lets clients without a certificate in (a bad one is cut in server.ts).
    rejectUnauthorized: Boolean(files.requireClientCert),
  };
}

export interface TlsReloadLog {
  info(obj: Record<string, unknown>, msg: string): void;
  warn(obj: Record<string, unknown>, msg: string): void;
  error(obj: Record<string, unknown>, msg: string): void;
}

/**
 * Reloads the edge certificate and key (and client CA) into a running server: new connections get the new
 * context, open ones keep theirs. A file that does not load (unreadable, not PEM, key and certificate do not match)
 * is logged and the old context stays. Watches the files' directories (replace-by-rename and symlink swaps included),
 * debounced so that a certificate and key written one after the other load together.
 */
export class EdgeTlsReloader {
  private readonly server: TlsServer;
  private readonly files: EdgeTlsFiles;
  private readonly log: TlsReloadLog;
  private readonly debounceMs: number;
  private readonly watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private loaded: string;
  /** sha-256 fingerprint of the certificate new connections get */
  fingerprint: string;

  constructor(server: TlsServer, files: EdgeTlsFiles, log: TlsReloadLog, debounceMs = 200) {
    this.server = server;
    this.files = files;
    this.log = log;
    this.debounceMs = debounceMs;
    const opts = edgeContextOptions(files);
    this.loaded = digest(opts);
    this.fingerprint = new X509Certificate(opts.cert as Buffer).fingerprint256;
  }

  /** Reads the files and installs them if they changed; true when a new context is in place. */
  reload(reason: string): boolean {
    let opts: SecureContextOptions;
    let cert: X509Certificate;
    try {
      opts = edgeContextOptions(this.files);
      const d = digest(opts);
      if (d === this.loaded) return false;
      cert = new X509Certificate(opts.cert as Buffer);
      createSecureContext(opts); // throws when the key does not match the certificate
      this.server.setSecureContext(opts);
      this.loaded = d;
    } catch (err) {
      this.log.error(
        { reason, certFile: this.files.certFile, keyFile: this.files.keyFile, err: err instanceof Error ? err.message : String(err) },
        'edge TLS reload failed: keeping the certificate in use',
      );
      return false;
    }
    this.fingerprint = cert.fingerprint256;
    const expired = Date.parse(cert.validTo) < Date.now();
    this.log[expired ? 'warn' : 'info'](
      { reason, subject: cert.subject, fingerprint256: cert.fingerprint256, validTo: cert.validTo, expired },
      'edge TLS certificate reloaded: new connections use it, open ones keep theirs',
    );
    return true;
  }

  watch(): void {
    const dirs = new Set([this.files.certFile, this.files.keyFile, ...(this.files.clientCaFile ? [this.files.clientCaFile] : [])].map((f) => dirname(f)));
    for (const dir of dirs) {
      try {
        const w = watch(dir, { persistent: false }, () => this.schedule());
        w.on('error', (err) => this.log.warn({ dir, err: err.message }, 'edge TLS: watching stopped; SIGHUP still reloads'));
        this.watchers.push(w);
      } catch (err) {
        this.log.warn({ dir, err: err instanceof Error ? err.message : String(err) }, 'edge TLS: cannot watch; SIGHUP still reloads');
      }
    }
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.reload('file change'), this.debounceMs);
    this.timer.unref();
  }

  close(): void {
    clearTimeout(this.timer);
    for (const w of this.watchers) w.close();
    this.watchers.length = 0;
  }
}

function digest(opts: SecureContextOptions): string {
  const h = createHash('sha256');
  for (const part of [opts.cert, opts.key, opts.ca]) h.update(part ? (part as Buffer) : Buffer.alloc(0)).update('\0');
  return h.digest('hex');
}

/** The example certificates (certs-example), to recognise them and anything they signed. */
export interface ExampleCertificates {
  fingerprints: Set<string>;
  cas: X509Certificate[];
  /** SPKI (DER, hex) of every example certificate: their private keys are public too. */
  publicKeys: Set<string>;
}

const spki = (key: ReturnType<typeof createPublicKey>): string => key.export({ type: 'spki', format: 'der' }).toString('hex');

export function fingerprintsIn(dir: string): ExampleCertificates {
  const out: ExampleCertificates = { fingerprints: new Set(), cas: [], publicKeys: new Set() };
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
      out.publicKeys.add(spki(cert.publicKey));
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
  let pem: string;
  try {
    pem = readFileSync(file, 'latin1');
  } catch {
    return false;
  }
  // Every certificate of a bundle: one example CA among real ones is trusted all the same.
  for (const block of pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? []) {
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(block);
    } catch {
      continue;
    }
    if (examples.fingerprints.has(cert.fingerprint256)) return true;
    if (EXAMPLE_MARK.test(cert.subject) || EXAMPLE_MARK.test(cert.issuer)) return true;
    if (examples.cas.some((ca) => cert.checkIssued(ca) && cert.verify(ca.publicKey))) return true;
  }
  return false;
}

/** True for a private key whose public half is an example certificate's (certs-example/*.key, wherever copied). */
export function isExampleKey(file: string, examples: ExampleCertificates): boolean {
  try {
    return examples.publicKeys.has(spki(createPublicKey(createPrivateKey(readFileSync(file)))));
  } catch {
    return false;
  }
}
