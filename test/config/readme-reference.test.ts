import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configReference } from '../../src/config/reference.ts';

describe('README configuration reference', () => {
  it('equals the table generated from the zod schema (run `npm run -s config-reference` to refresh it)', () => {
    const readme = readFileSync(join(import.meta.dirname, '..', '..', 'README.md'), 'utf8');
    const m = /<!-- config-reference:start -->\n([\s\S]*?)\n<!-- config-reference:end -->/.exec(readme);
    expect(m, 'README has the config-reference markers').not.toBeNull();
    expect(m![1]).toBe(configReference());
  });

  it('documents every key with a meaning', () => {
    for (const line of configReference().split('\n').slice(2)) expect(line, line).not.toMatch(/\|\s*\|$/);
  });
});
