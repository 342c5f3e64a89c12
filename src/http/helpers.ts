// Small HTTP helpers shared by app.ts and the admin routes: JSON bodies with typed 4xx errors, store errors as 503.
import { BadRequest, GatewayError, StoreUnavailable, UnsupportedMediaType } from '../errors.ts';

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

export async function readJsonObject(c: RequestLike): Promise<Record<string, unknown>> {
  const type = c.req.header('content-type');
  if (type !== undefined && !/^application\/([\w.+-]*\+)?json\s*(;|$)/i.test(type)) throw new UnsupportedMediaType();
  const text = await c.req.text();
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
