// Certificates for the benchmark: a throwaway private CA (production mode refuses certs-example and make-certs output).
import { genCerts } from '../src/cli/gencerts.ts';

export function makeBenchPki(dir: string): void {
  genCerts({ dir, edgeHosts: ['localhost', '127.0.0.1'], nodeHosts: ['localhost', '127.0.0.1'], days: 2, force: true });
}
