import { describe, expect, it } from 'vitest';
import { userKey } from '../../src/auth/throttle.ts';

describe('userKey: one login-throttle count per account, however the name is typed', () => {
  it.each([
    ['Alice Adams', 'alice adams'],
    ['Alice  Adams', 'alice adams'], // a directory matches runs of spaces as one
    [' ALICE\tADAMS ', 'alice adams'],
    ['al\u0130ce', 'alice'], // dotted capital I
    ['\uFF41\uFF4C\uFF49\uFF43\uFF45', 'alice'], // fullwidth forms
    ['Jose\u0301', 'jose'], // a combining accent
  ])('%j -> %j', (typed, key) => {
    expect(userKey(typed)).toBe(key);
  });

  it('keeps different accounts apart', () => {
    expect(userKey('alice')).not.toBe(userKey('alicia'));
    expect(userKey('a.adams')).not.toBe(userKey('aadams'));
  });
});
