// The HTTPS client of the aad provider: OIDC discovery, JWKS (as jose's customFetch), the token endpoint and
// Microsoft Graph. One keep-alive agent with the configured CA, hard timeouts, bounded answers, https only.
import https from 'node:https';

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** The request never got an HTTP answer (refused, reset, TLS, timeout, answer too large): the service is unreachable. */
export class Unreachable extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Unreachable';
  }
}

const MAX_ANSWER_BYTES = 1024 * 1024;

export class AzureHttp {
  private readonly agent: https.Agent;
  private readonly timeoutMs: number;

  constructor(opts: { ca?: Buffer | undefined; timeoutMs: number }) {
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 16, ...(opts.ca ? { ca: opts.ca } : {}) });
    this.timeoutMs = opts.timeoutMs;
  }

  send(
    method: 'GET' | 'POST',
    url: string,
    opts: { headers?: Record<string, string>; body?: string; signal?: AbortSignal | undefined } = {},
  ): Promise<HttpAnswer> {
    return new Promise((resolve, reject) => {
      let target: URL;
      try {
        target = new URL(url);
      } catch {
        reject(new Unreachable(`not a URL: ${url}`));
        return;
      }
      if (target.protocol !== 'https:') {
        reject(new Unreachable(`refusing a non-https URL: ${target.origin}`));
        return;
      }
      const headers: Record<string, string> = { accept: 'application/json', ...(opts.headers ?? {}) };
      if (opts.body !== undefined) headers['content-length'] = String(Buffer.byteLength(opts.body));
      const where = `${method} ${target.origin}${target.pathname}`;
      const req = https.request(target, { method, headers, agent: this.agent, timeout: this.timeoutMs }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) {
            req.destroy(new Unreachable(`${where}: answer larger than ${MAX_ANSWER_BYTES} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(deadline);
          const flat: Record<string, string> = {};
          for (const [k, v] of Object.entries(res.headers)) if (v !== undefined) flat[k] = Array.isArray(v) ? v.join(', ') : v;
          resolve({ status: res.statusCode ?? 0, headers: flat, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => fail(err));
      });
      // `timeout` is idle time on the socket; the deadline bounds the whole exchange.
      const deadline = setTimeout(() => req.destroy(new Unreachable(`${where}: no answer within ${this.timeoutMs} ms`)), this.timeoutMs);
      const fail = (err: Error): void => {
        clearTimeout(deadline);
        reject(err instanceof Unreachable ? err : new Unreachable(`${where}: ${err.message}`, { cause: err }));
      };
      req.on('timeout', () => req.destroy(new Unreachable(`${where}: idle for ${this.timeoutMs} ms`)));
      req.on('error', fail);
      if (opts.signal) {
        if (opts.signal.aborted) req.destroy(new Unreachable(`${where}: aborted`));
        else opts.signal.addEventListener('abort', () => req.destroy(new Unreachable(`${where}: aborted`)), { once: true });
      }
      req.end(opts.body);
    });
  }

  /** A JSON object answer, or undefined when the body is not a JSON object. */
  static json(answer: HttpAnswer): Record<string, unknown> | undefined {
    try {
      const v: unknown = JSON.parse(answer.text);
      return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }

  /** jose's customFetch for createRemoteJWKSet: the same agent, CA and limits. */
  readonly fetch = async (url: string, init: { headers: Headers; signal: AbortSignal }): Promise<Response> => {
    const headers: Record<string, string> = {};
    init.headers.forEach((v, k) => (headers[k] = v));
    const a = await this.send('GET', url, { headers, signal: init.signal });
    if (a.status < 200 || a.status > 599) throw new Unreachable(`GET ${url}: HTTP ${a.status}`);
    const nullBody = a.status === 204 || a.status === 205 || a.status === 304;
    return new Response(nullBody ? null : a.text, { status: a.status, headers: a.headers });
  };

  close(): void {
    this.agent.destroy();
  }
}
