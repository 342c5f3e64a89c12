// Small HTTP helpers shared by app.ts and the admin routes: JSON bodies with typed 4xx errors, store errors as 503.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import { BadRequest, GatewayError, PayloadTooLarge, StoreUnavailable, UnsupportedMediaType } from '../errors.ts';

/** What the helpers need of a Hono context (any Env). */
interface RequestLike {
  req: { header(name: string): string | undefined; text(): Promise<string> };
}

/** Store failures become 503 store_unavailable: never a 401 that tells a valid user their password is wrong. */
export async function guardStore<T>(p: Promise<T>): Promise<T> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof GatewayError) throw err;
    throw new StoreUnavailable(err instanceof Error ? err.message : String(err));
  }
}

/**
 * A JSON answer written straight to the Node response, as hono's c.json() would (same Content-Type), without the
 * fetch Response and Headers objects it builds (~44 us of a token refresh). Headers set earlier on `res`
 * (X-Request-Id, Cache-Control) go out with it.
 */
export function sendJson(res: ServerResponse, status: number, value: unknown): typeof RESPONSE_ALREADY_SENT {
  const body = JSON.stringify(value);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  return RESPONSE_ALREADY_SENT;
}

const JSON_TYPE = /^application\/([\w.+-]*\+)?json\s*(;|$)/i;

export async function readJsonObject(c: RequestLike): Promise<Record<string, unknown>> {
  checkJsonType(c.req.header('content-type'));
  return parseJsonObject(await c.req.text());
}

/**
 * The same, read straight off the Node request: no fetch Request or web stream is built (they cost more CPU than
 * the whole token refresh). More than `limit` bytes is a 413, refused from Content-Length before anything is read.
 */
export async function readJsonObjectFrom(incoming: IncomingMessage, limit: number): Promise<Record<string, unknown>> {
  checkJsonType(incoming.headers['content-type']);
  const declared = incoming.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) throw new PayloadTooLarge(limit);
  if (incoming.readableEnded) return parseJsonObject('');
  const text = await new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (): void => {
      incoming.off('data', onData).off('end', onEnd).off('error', onError).off('close', onError);
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size <= limit) {
        chunks.push(chunk);
        return;
      }
      done();
      incoming.resume(); // the rest is drained and dropped, so the connection can answer the 413
      reject(new PayloadTooLarge(limit));
    };
    const onEnd = (): void => {
      done();
      resolve(Buffer.concat(chunks, size).toString('utf8'));
    };
    const onError = (): void => {
      done();
      reject(new BadRequest('The request body could not be read.', 'malformed_json', 'client aborted the body'));
    };
    // 'close' before 'end': the client went away mid-body (the promise must settle, not wait forever).
    incoming.on('data', onData).on('end', onEnd).on('error', onError).on('close', onError);
  });
  return parseJsonObject(text);
}

function checkJsonType(type: string | undefined): void {
  if (type !== undefined && !JSON_TYPE.test(type)) throw new UnsupportedMediaType();
}

function parseJsonObject(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new BadRequest('The request body is not valid JSON.', 'malformed_json');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new BadRequest('The request body must be a JSON object.', 'malformed_json');
  }
  return parsed as Record<string, unknown>;
}

export function requireString(body: Record<string, unknown>, field: string, maxLength: number): string {
  const v = body[field];
  if (v === undefined || v === null) throw new BadRequest(`The field "${field}" is required.`, 'missing_field');
  if (typeof v !== 'string') throw new BadRequest(`The field "${field}" must be a string.`, 'invalid_field');
  if (v.trim() === '') throw new BadRequest(`The field "${field}" must not be empty.`, 'invalid_field');
  if (v.length > maxLength) throw new BadRequest(`The field "${field}" is longer than ${maxLength} characters.`, 'invalid_field');
  return v;
}
