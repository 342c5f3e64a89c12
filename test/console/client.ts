// A small HTTP client for the admin console as a browser would use it: form posts with Origin, the session cookie,
// and the CSRF token read from the last page.
import https from 'node:https';
import { CA } from '../integration/setup.ts';

export interface Page {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  text: string;
  location: string | undefined;
}

export const BASE = '/mlgate/console';

export function send(
  url: string,
  method: string,
  path: string,
  opts: { form?: Record<string, string>; headers?: Record<string, string>; from?: string } = {},
): Promise<Page> {
  const headers: Record<string, string> = { ...(opts.headers ?? {}) };
  let body: string | undefined;
  if (opts.form) {
    body = new URLSearchParams(opts.form).toString();
    headers['content-type'] ??= 'application/x-www-form-urlencoded';
  }
  return new Promise((resolve, reject) => {
    const req = https.request(new URL(path, url), { method, headers, ca: CA, agent: false, ...(opts.from ? { localAddress: opts.from } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8'), location: res.headers.location }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

export class ConsoleClient {
  readonly url: string;
  readonly origin: string;
  cookie: string | undefined;
  csrf: string | undefined;

  constructor(url: string) {
    this.url = url;
    this.origin = new URL(url).origin;
  }

  /** Logs in through the form; returns the answer (303 on success). */
  async login(username: string, password: string, opts: { origin?: string | null; from?: string } = {}): Promise<Page> {
    const headers: Record<string, string> = {};
    if (opts.origin !== null) headers.origin = opts.origin ?? this.origin;
    const r = await send(this.url, 'POST', `${BASE}/login`, { form: { username, password }, headers, ...(opts.from ? { from: opts.from } : {}) });
    const set = r.headers['set-cookie'];
    const cookie = (Array.isArray(set) ? set : []).find((c) => c.startsWith('__Secure-mlgate-console='));
    if (cookie) this.cookie = cookie.split(';')[0];
    if (r.status === 303) await this.get(`${BASE}/sessions`);
    return r;
  }

  async get(path: string): Promise<Page> {
    const r = await send(this.url, 'GET', path, { headers: this.cookie ? { cookie: this.cookie } : {} });
    const m = /name="csrf" value="([^"]+)"/.exec(r.text);
    if (m) this.csrf = m[1];
    return r;
  }

  /** A form post with this session; `csrf: null` leaves the token out, `origin: null` the Origin header. */
  post(path: string, form: Record<string, string>, opts: { csrf?: string | null; origin?: string | null } = {}): Promise<Page> {
    const headers: Record<string, string> = {};
    if (this.cookie) headers.cookie = this.cookie;
    if (opts.origin !== null) headers.origin = opts.origin ?? this.origin;
    const token = opts.csrf === undefined ? this.csrf : opts.csrf;
    return send(this.url, 'POST', path, { form: token === null || token === undefined ? form : { ...form, csrf: token }, headers });
  }
}
