// Request-target normalization (DESIGN section 6): the raw target is either returned unchanged or
// rejected; nothing is collapsed, decoded or rewritten on the way to the node.
//
// Double encoding: any `%25` (an encoded '%') is rejected ('double_encoding'). A literal '%' is never
// needed in ML Server names, and `%252F`/`%255C`/`%252E` are the classic bypasses when some hop
// decodes twice. Other encoded unreserved characters (e.g. `%41`, `a%2Eb`) are accepted as data:
// fixed route words are matched against the raw segment, so `/%73ervices` simply matches no route.

export type TargetResult =
  | { ok: true; path: string; search: string }
  | { ok: false; reason: string };

export const MAX_PATH_LENGTH = 2048;
export const MAX_SEGMENTS = 32;

// Per ASCII code: 0 = allowed raw in a path, otherwise the rejection reason.
const PATH_CHAR_REASON: readonly (string | 0)[] = (() => {
  const t: (string | 0)[] = [];
  for (let c = 0; c < 128; c++) t.push('invalid_character');
  // RFC 3986 pchar: unreserved / sub-delims / ':' / '@', plus '%' (checked later) and '/'.
  const ok = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,=:@%/";
  for (const ch of ok) t[ch.charCodeAt(0)] = 0;
  for (let c = 0; c < 0x20; c++) t[c] = 'control_character';
  t[0x7f] = 'control_character';
  t[0x5c] = 'backslash';
  t[0x3b] = 'path_parameter';
  t[0x23] = 'fragment';
  return t;
})();

function fail(reason: string): TargetResult {
  return { ok: false, reason };
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  return -1;
}

// Strict UTF-8 (Unicode Table 3-7): no overlongs, no surrogates, nothing above U+10FFFF.
function utf8Problem(b: readonly number[]): string | null {
  let i = 0;
  while (i < b.length) {
    const x = b[i]!;
    if (x < 0x80) {
      i++;
      continue;
    }
    let n: number;
    let lo = 0x80;
    let hi = 0xbf;
    if (x >= 0xc2 && x <= 0xdf) {
      n = 1;
    } else if (x === 0xe0) {
      n = 2;
      lo = 0xa0;
    } else if ((x >= 0xe1 && x <= 0xec) || x === 0xee || x === 0xef) {
      n = 2;
    } else if (x === 0xed) {
      n = 2;
      hi = 0x9f;
    } else if (x === 0xf0) {
      n = 3;
      lo = 0x90;
    } else if (x >= 0xf1 && x <= 0xf3) {
      n = 3;
    } else if (x === 0xf4) {
      n = 3;
      hi = 0x8f;
    } else {
      return 'invalid_utf8';
    }
    if (i + n >= b.length) return 'invalid_utf8';
    const b1 = b[i + 1]!;
    if (b1 < lo || b1 > hi) return 'invalid_utf8';
    for (let k = 2; k <= n; k++) {
      const bk = b[i + k]!;
      if (bk < 0x80 || bk > 0xbf) return 'invalid_utf8';
    }
    // C1 controls (U+0080..U+009F) are control characters too.
    if (x === 0xc2 && b1 <= 0x9f) return 'control_character';
    i += n + 1;
  }
  return null;
}

// Validates one non-empty path segment (raw characters were already checked).
function segmentProblem(seg: string): string | null {
  if (seg.indexOf('%') === -1) return seg === '.' || seg === '..' ? 'dot_segment' : null;
  const bytes: number[] = [];
  let high = false;
  for (let i = 0; i < seg.length; i++) {
    const c = seg.charCodeAt(i);
    if (c !== 0x25) {
      bytes.push(c);
      continue;
    }
    const h1 = i + 1 < seg.length ? hexValue(seg.charCodeAt(i + 1)) : -1;
    const h2 = i + 2 < seg.length ? hexValue(seg.charCodeAt(i + 2)) : -1;
    if (h1 < 0 || h2 < 0) return 'invalid_percent_encoding';
    const v = h1 * 16 + h2;
    if (v < 0x20 || v === 0x7f) return 'control_character';
    if (v === 0x2f) return 'encoded_slash';
    if (v === 0x5c) return 'encoded_backslash';
    if (v === 0x25) return 'double_encoding';
    if (v === 0x3b) return 'path_parameter';
    if (v >= 0x80) high = true;
    bytes.push(v);
    i += 2;
  }
  if (bytes.length <= 2 && bytes.every((v) => v === 0x2e)) return 'dot_segment';
  return high ? utf8Problem(bytes) : null;
}

function pathProblem(path: string): string | null {
  if (path.length > MAX_PATH_LENGTH) return 'path_too_long';
  if (path === '/') return null;
  let segStart = 1;
  let segments = 0;
  for (let i = 1; i <= path.length; i++) {
    const c = i < path.length ? path.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      if (i === segStart) return i === path.length ? 'trailing_slash' : 'empty_segment';
      if (++segments > MAX_SEGMENTS) return 'too_many_segments';
      const p = segmentProblem(path.slice(segStart, i));
      if (p !== null) return p;
      segStart = i + 1;
      continue;
    }
    const r = c < 128 ? PATH_CHAR_REASON[c]! : 'invalid_character';
    if (r !== 0) return r;
  }
  return null;
}

function queryProblem(search: string): string | null {
  for (let i = 0; i < search.length; i++) {
    const c = search.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return 'control_character';
    if (c === 0x20 || c >= 0x80) return 'invalid_character';
    if (c === 0x23) return 'fragment';
  }
  return null;
}

/** Validates the raw request-target (req.url); the returned path is exactly what is forwarded. */
export function normalizeTarget(rawTarget: string): TargetResult {
  if (typeof rawTarget !== 'string' || rawTarget.length === 0) return fail('empty_target');
  if (rawTarget.charCodeAt(0) !== 0x2f) {
    if (rawTarget === '*') return fail('asterisk_form');
    if (/^[A-Za-z][A-Za-z0-9+.-]*:\/\//.test(rawTarget)) return fail('absolute_form');
    if (/^[^/?#@\s]+:\d*$/.test(rawTarget)) return fail('authority_form');
    return fail('not_origin_form');
  }
  const q = rawTarget.indexOf('?');
  const path = q === -1 ? rawTarget : rawTarget.slice(0, q);
  const search = q === -1 ? '' : rawTarget.slice(q);
  const p = pathProblem(path) ?? queryProblem(search);
  return p === null ? { ok: true, path, search } : fail(p);
}

/** Percent-decodes one validated path segment (route parameters); throws on malformed input. */
export function decodeSegment(s: string): string {
  if (s.indexOf('%') === -1) return s;
  try {
    return decodeURIComponent(s);
  } catch {
    throw new Error(`Malformed percent-encoding in path segment "${s}"`);
  }
}
