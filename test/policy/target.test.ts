import { describe, it, expect } from 'vitest';
import { normalizeTarget, decodeSegment } from '../../src/policy/index.ts';

const long = (n: number): string => '/' + 'a'.repeat(n - 1);
const segs = (n: number): string => '/s'.repeat(n);

// [raw target, expected path (accepted) or null (rejected), expected search or reason]
const accepted: [string, string, string][] = [
  ['/', '/', ''],
  ['/?', '/', '?'],
  ['/services', '/services', ''],
  ['/services/add-one/v1.0.0', '/services/add-one/v1.0.0', ''],
  ['/api/add-one/1.0.0/swagger.json', '/api/add-one/1.0.0/swagger.json', ''],
  ['/api/bos-rf/1.0.0/batch?parallelCount=2', '/api/bos-rf/1.0.0/batch', '?parallelCount=2'],
  ['/login/refreshToken?refreshToken=abc%2Fdef%3D', '/login/refreshToken', '?refreshToken=abc%2Fdef%3D'],
  ['/sessions/123/files?x=%2e%2e%2f', '/sessions/123/files', '?x=%2e%2e%2f'],
  ['/Services', '/Services', ''], // normalization does not fold case; routing decides (404)
  ['/SERVICES/A/B', '/SERVICES/A/B', ''],
  ['/services/caf%C3%A9/1', '/services/caf%C3%A9/1', ''], // valid UTF-8, kept encoded
  ['/services/caf%c3%a9/1', '/services/caf%c3%a9/1', ''], // lower-case hex, kept as is
  ['/services/%E2%82%AC/1', '/services/%E2%82%AC/1', ''], // U+20AC
  ['/services/%F0%9F%98%80/1', '/services/%F0%9F%98%80/1', ''], // U+1F600 (4 bytes)
  ['/services/%EF%BF%BD/1', '/services/%EF%BF%BD/1', ''], // U+FFFD is valid
  ['/services/a%20b/1', '/services/a%20b/1', ''], // encoded space is data
  ['/services/a%2Eb/1', '/services/a%2Eb/1', ''], // encoded dot inside a segment is not a dot segment
  ['/services/%41bc/1', '/services/%41bc/1', ''], // encoded unreserved kept, never decoded in place
  ['/services/.../1', '/services/.../1', ''], // three dots is not a dot segment
  ['/services/.hidden/1', '/services/.hidden/1', ''],
  ['/services/a..b/1', '/services/a..b/1', ''],
  ['/services/a%3Fb/1', '/services/a%3Fb/1', ''], // encoded '?' is data
  ['/services/a%23b/1', '/services/a%23b/1', ''], // encoded '#' is data
  ["/services/a!$&'()*+,=:@~_-/1", "/services/a!$&'()*+,=:@~_-/1", ''],
  [long(2048), long(2048), ''],
  [segs(32), segs(32), ''],
];

const rejected: [string, string][] = [
  // Not origin-form.
  ['', 'empty_target'],
  ['*', 'asterisk_form'],
  ['http://evil.example/services', 'absolute_form'],
  ['HTTPS://node:12800/status', 'absolute_form'],
  ['node.example:443', 'authority_form'],
  ['services/a/b', 'not_origin_form'],
  // Encoded slash and backslash, any case.
  ['/services/a%2Fb/1', 'encoded_slash'],
  ['/services/a%2fb/1', 'encoded_slash'],
  ['/services/%2F/1', 'encoded_slash'],
  ['/services/a%5Cb/1', 'encoded_backslash'],
  ['/services/a%5cb/1', 'encoded_backslash'],
  ['/services\\a/1', 'backslash'],
  ['/services/..\\..\\admin', 'backslash'],
  // Double encoding: %25 is rejected outright.
  ['/services/a%252Fb/1', 'double_encoding'],
  ['/services/%252e%252e/1', 'double_encoding'],
  ['/services/a%255Cb/1', 'double_encoding'],
  ['/services/100%25/1', 'double_encoding'],
  // Dot segments, raw and encoded, as a whole segment.
  ['/services/./1', 'dot_segment'],
  ['/services/../admin', 'dot_segment'],
  ['/.', 'dot_segment'],
  ['/..', 'dot_segment'],
  ['/services/%2e/1', 'dot_segment'],
  ['/services/%2E%2e/1', 'dot_segment'],
  ['/services/.%2e/1', 'dot_segment'],
  ['/services/%2e./1', 'dot_segment'],
  ['/services/a/..', 'dot_segment'],
  // Duplicate slashes, empty segments, trailing slash.
  ['//services', 'empty_segment'],
  ['//evil.example/x', 'empty_segment'],
  ['/services//a/1', 'empty_segment'],
  ['/services/a/1//', 'empty_segment'],
  ['/services/', 'trailing_slash'],
  ['/services/a/1/', 'trailing_slash'],
  // Path parameters.
  ['/services;jsessionid=1/a/1', 'path_parameter'],
  ['/services/a;v=2/1', 'path_parameter'],
  ['/services/a%3Bb/1', 'path_parameter'],
  // NUL and control characters, raw and encoded.
  ['/services/a%00b/1', 'control_character'],
  ['/services/a\u0000b/1', 'control_character'],
  ['/services/a%0Ab/1', 'control_character'],
  ['/services/a%0d%0aX-Injected:1/1', 'control_character'],
  ['/services/a\tb/1', 'control_character'],
  ['/services/a%1Fb/1', 'control_character'],
  ['/services/a%7Fb/1', 'control_character'],
  ['/services/a\u007fb/1', 'control_character'],
  ['/services/a%C2%85b/1', 'control_character'], // C1 control U+0085
  ['/status?x=a\u0000', 'control_character'],
  ['/status?x=a\r\nb', 'control_character'],
  // Invalid percent-encoding.
  ['/services/%zz/1', 'invalid_percent_encoding'],
  ['/services/%4/1', 'invalid_percent_encoding'],
  ['/services/a%', 'invalid_percent_encoding'],
  ['/services/%%32%66/1', 'invalid_percent_encoding'],
  ['/services/%G0/1', 'invalid_percent_encoding'],
  // Invalid UTF-8 after decoding.
  ['/services/%C0%AF/1', 'invalid_utf8'], // overlong '/'
  ['/services/%C1%9C/1', 'invalid_utf8'], // overlong '\'
  ['/services/%E0%80%AF/1', 'invalid_utf8'], // 3-byte overlong '/'
  ['/services/%F0%80%80%AF/1', 'invalid_utf8'], // 4-byte overlong '/'
  ['/services/%C0%AE%C0%AE/1', 'invalid_utf8'], // overlong '..'
  ['/services/%80/1', 'invalid_utf8'], // lone continuation byte
  ['/services/a%BFb/1', 'invalid_utf8'],
  ['/services/%C3/1', 'invalid_utf8'], // truncated sequence
  ['/services/%C3A/1', 'invalid_utf8'], // lead byte followed by ASCII
  ['/services/%ED%A0%80/1', 'invalid_utf8'], // UTF-16 surrogate U+D800
  ['/services/%ED%BF%BF/1', 'invalid_utf8'], // surrogate U+DFFF
  ['/services/%F4%90%80%80/1', 'invalid_utf8'], // above U+10FFFF
  ['/services/%FF/1', 'invalid_utf8'],
  // Raw characters outside pchar.
  ['/services/a b/1', 'invalid_character'],
  ['/services/caf\u00e9/1', 'invalid_character'], // raw non-ASCII must be percent-encoded
  ['/services/a<b>/1', 'invalid_character'],
  ['/services/a"b/1', 'invalid_character'],
  ['/services/{name}/1', 'invalid_character'],
  ['/services/a|b/1', 'invalid_character'],
  ['/status?x=a b', 'invalid_character'],
  ['/status?x=\u00e9', 'invalid_character'],
  // Fragments.
  ['/services#frag', 'fragment'],
  ['/status?x=1#frag', 'fragment'],
  // Size limits.
  [long(2049), 'path_too_long'],
  [segs(33), 'too_many_segments'],
];

describe('normalizeTarget: accepted targets are returned unchanged', () => {
  it.each(accepted)('%j', (raw, path, search) => {
    expect(normalizeTarget(raw)).toEqual({ ok: true, path, search });
  });
});

describe('normalizeTarget: rejected targets', () => {
  it.each(rejected)('%j -> %s', (raw, reason) => {
    expect(normalizeTarget(raw)).toEqual({ ok: false, reason });
  });

  it('has at least 60 table rows in total', () => {
    expect(accepted.length + rejected.length).toBeGreaterThanOrEqual(60);
  });

  it('never returns a path different from the input path (nothing is collapsed)', () => {
    for (const [raw] of [...accepted, ...rejected.map(([r]) => [r] as const)]) {
      const r = normalizeTarget(raw);
      if (r.ok) expect(r.path + r.search).toBe(raw);
    }
  });
});

describe('decodeSegment', () => {
  it.each([
    ['plain', 'plain'],
    ['a%20b', 'a b'],
    ['caf%C3%A9', 'café'],
    ['caf%c3%a9', 'café'],
    ['%F0%9F%98%80', '\u{1F600}'],
    ['a+b', 'a+b'], // '+' is not a space in paths
    ['a%2Eb', 'a.b'],
  ])('%s -> %s', (input, out) => {
    expect(decodeSegment(input)).toBe(out);
  });

  it('throws on malformed input (only validated segments may be decoded)', () => {
    expect(() => decodeSegment('%zz')).toThrow(/percent-encoding/);
    expect(() => decodeSegment('%C0%AF')).toThrow(/percent-encoding/);
  });
});
