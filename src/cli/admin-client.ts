// `mlgate revoke`, `mlgate sessions` and `mlgate owner`: clients of the gateway's admin API (/mlgate/admin), never of the store,
// so the CLI and HTTP share one implementation, one authorization check (Owner) and one audit trail.
import { readFileSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import { parseArgs } from 'node:util';

export const ADMIN_USAGE = `  revoke --url <gateway> --token <owner access token> family <familyId> | user <subject> | refresh-token <token>
                           end one refresh family, every session of a user (not-before = now), or the family of a refresh token
  sessions --url <gateway> --token <owner access token> <subject>
                           list a user's active refresh families (no secrets)
  owner --url <gateway> --token <owner access token> <name/version> <new owner>
                           record the owner of a web service, whatever was recorded (transfer; audited)
    --token-file <file> or MLGATE_TOKEN instead of --token (keeps it out of the process list); --url or MLGATE_URL;
    --ca <file>: PEM CA of the gateway certificate (default: system CAs and NODE_EXTRA_CA_CERTS)`;

interface Answer {
  status: number;
  body: string;
}

function send(url: URL, method: string, token: string, ca: Buffer | undefined, body?: unknown): Promise<Answer> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {}),
        },
        ...(ca ? { ca } : {}),
        timeout: 15_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error(`no answer from ${url.origin} within 15 s`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** Runs `revoke`, `sessions` or `owner`; returns the exit code (0 ok, 1 refused by the gateway, 2 usage). */
export async function adminCommand(command: 'revoke' | 'sessions' | 'owner', argv: string[], env: NodeJS.ProcessEnv): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      options: { url: { type: 'string' }, token: { type: 'string' }, 'token-file': { type: 'string' }, ca: { type: 'string' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    process.stderr.write(`mlgate ${command}: ${(err as Error).message}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  const base = values.url ?? env.MLGATE_URL;
  const token = values.token ?? (values['token-file'] ? readFileSync(values['token-file'], 'utf8').trim() : env.MLGATE_TOKEN);
  if (!base || !token) {
    process.stderr.write(`mlgate ${command}: --url and --token (or --token-file, MLGATE_TOKEN) are required\n`);
    return 2;
  }
  const ca = values.ca ? readFileSync(values.ca) : undefined;
  const at = (path: string) => new URL(`/mlgate/admin${path}`, base);

  let answer: Answer;
  if (command === 'sessions') {
    const [subject] = positionals;
    if (!subject || positionals.length !== 1) return usage(command);
    answer = await send(at(`/users/${encodeURIComponent(subject)}/sessions`), 'GET', token, ca);
  } else if (command === 'owner') {
    const [service, owner] = positionals;
    if (!owner || positionals.length !== 2) return usage(command);
    answer = await send(at('/services/owner'), 'POST', token, ca, { service, owner });
  } else {
    const [what, id] = positionals;
    if (!id || positionals.length !== 2) return usage(command);
    if (what === 'family') answer = await send(at('/revoke/family'), 'POST', token, ca, { familyId: id });
    else if (what === 'user') answer = await send(at('/revoke/user'), 'POST', token, ca, { subject: id });
    else if (what === 'refresh-token') answer = await send(at('/revoke/refresh-token'), 'POST', token, ca, { refreshToken: id });
    else return usage(command);
  }
  if (answer.status === 200) {
    process.stdout.write(`${pretty(answer.body)}\n`);
    return 0;
  }
  process.stderr.write(`mlgate ${command}: ${answer.status} ${pretty(answer.body)}\n`);
  return 1;
}

function usage(command: string): number {
  process.stderr.write(`usage: mlgate ${command} ...\n${ADMIN_USAGE}\n`);
  return 2;
}

function pretty(text: string): string {
  try {
    return JSON.stringify(JSON.parse(text), null, 2);
  } catch {
    return text;
  }
}
