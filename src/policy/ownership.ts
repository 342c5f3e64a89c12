// Ownership keys and the one place the node's answer decides one: a publish without a version in the path
// (POST /services/{name}, POST /realtime-services/{name}) where the node chooses the version.

/** The ownership key of a web service: `${name}/${version}`, both percent-decoded (neither can contain '/'). */
export function serviceKey(name: string, version: string): string {
  return `${name}/${version}`;
}

export interface PublishAnswer {
  /** The node's 2xx answer body as text, or null when it was not read (too large, encoded, cut off). */
  body: string | null;
  /** Its Location header, if any. */
  location?: string | undefined;
}

const MAX_VERSION_LENGTH = 256;
const SERVICE_WORDS = new Set(['api', 'services', 'realtime-services']);

function validVersion(v: unknown): v is string {
  return typeof v === 'string' && v !== '' && v.length <= MAX_VERSION_LENGTH && v !== '.' && v !== '..' && !/[/\\\u0000-\u001f\u007f]/.test(v);
}

/** `/api/{name}/{version}` (also /services, /realtime-services; absolute URLs too) -> version, if name matches. */
function versionFromPath(text: string, name: string): string | null {
  const path = text.replace(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/[^/]*/, '').replace(/[?#].*$/s, '');
  const segs = path.split('/');
  if (segs.length < 4) return null;
  const [word, n, v] = segs.slice(-3) as [string, string, string];
  if (!SERVICE_WORDS.has(word)) return null;
  try {
    if (decodeURIComponent(n) !== name) return null;
    const version = decodeURIComponent(v);
    return validVersion(version) ? version : null;
  } catch {
    return null;
  }
}

/**
 * The version the node gave a service published as `name` without a version, read from its 2xx answer: a JSON
 * object with `version` (and, if present, the same `name`), a JSON string holding the service's path
 * (`/api/{name}/{version}`), or the Location header. null unless the answer says it unambiguously: then no owner
 * is recorded and only an Owner may change the service (fail closed).
 */
export function publishedVersion(name: string, answer: PublishAnswer): string | null {
  const found: string[] = [];
  if (answer.body !== null && answer.body.trim() !== '') {
    let parsed: unknown;
    try {
      parsed = JSON.parse(answer.body);
    } catch {
      parsed = undefined;
    }
    if (typeof parsed === 'string') {
      const v = versionFromPath(parsed, name);
      if (v !== null) found.push(v);
    } else if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const o = parsed as Record<string, unknown>;
      if (o.name !== undefined && o.name !== name) return null;
      if (validVersion(o.version)) found.push(o.version);
    }
  }
  if (answer.location !== undefined && answer.location !== '') {
    const v = versionFromPath(answer.location, name);
    if (v !== null) found.push(v);
  }
  if (found.length === 0 || found.some((v) => v !== found[0])) return null;
  return found[0]!;
}
