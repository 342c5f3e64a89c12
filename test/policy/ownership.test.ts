import { describe, expect, it } from 'vitest';
import { publishedVersion, serviceKey } from '../../src/policy/index.ts';
import type { PublishAnswer } from '../../src/policy/index.ts';

const GUID = '0f8c2c55-3f1e-4a39-9d7e-2b6c0a1d9e11';

describe('publishedVersion: the version the node chose for POST /services/{name}', () => {
  it.each([
    ['a JSON string with the api path', { body: JSON.stringify(`/api/add-one/${GUID}`) }, GUID],
    ['a JSON string with an absolute URL', { body: JSON.stringify(`https://node:12800/api/add-one/${GUID}`) }, GUID],
    ['a JSON string with the services path', { body: JSON.stringify(`/services/add-one/${GUID}`) }, GUID],
    ['a JSON string with a query', { body: JSON.stringify(`/api/add-one/${GUID}?x=1`) }, GUID],
    ['a JSON object with name and version', { body: JSON.stringify({ name: 'add-one', version: GUID, code: 'x' }) }, GUID],
    ['a JSON object with version only', { body: JSON.stringify({ version: 'v7' }) }, 'v7'],
    ['only the Location header', { body: null, location: `/api/add-one/${GUID}` }, GUID],
    ['body and Location that agree', { body: JSON.stringify(`/api/add-one/${GUID}`), location: `/api/add-one/${GUID}` }, GUID],
    ['an empty body and a Location', { body: '', location: `/api/add-one/${GUID}` }, GUID],
    ['percent-encoded segments', { body: JSON.stringify('/api/add-one/v%201') }, 'v 1'],
  ] as [string, PublishAnswer, string][])('reads %s', (_what, answer, version) => {
    expect(publishedVersion('add-one', answer)).toBe(version);
  });

  it('matches an encoded name against the decoded route parameter', () => {
    expect(publishedVersion('café', { body: JSON.stringify('/api/caf%C3%A9/2') })).toBe('2');
  });

  it.each([
    ['no body and no Location', { body: null }],
    ['an empty body', { body: '' }],
    ['not JSON', { body: 'Created' }],
    ['a bare JSON string', { body: JSON.stringify(GUID) }],
    ['a JSON array', { body: JSON.stringify([`/api/add-one/${GUID}`]) }],
    ['a JSON number', { body: '42' }],
    ['another service name in the path', { body: JSON.stringify(`/api/other/${GUID}`) }],
    ['another service name in the object', { body: JSON.stringify({ name: 'other', version: GUID }) }],
    ['a path of another API family', { body: JSON.stringify(`/sessions/add-one/${GUID}`) }],
    ['a too short path', { body: JSON.stringify('/api/add-one') }],
    ['a version with a slash', { body: JSON.stringify({ version: 'a/b' }) }],
    ['an encoded slash in the version', { body: JSON.stringify('/api/add-one/a%2Fb') }],
    ['a dot-dot version', { body: JSON.stringify('/api/add-one/..') }],
    ['a control character', { body: JSON.stringify({ version: 'a\nb' }) }],
    ['an empty version', { body: JSON.stringify({ version: '' }) }],
    ['a numeric version', { body: JSON.stringify({ version: 2 }) }],
    ['a very long version', { body: JSON.stringify({ version: 'v'.repeat(300) }) }],
    ['malformed encoding', { body: JSON.stringify('/api/add-one/%zz') }],
    ['body and Location that disagree', { body: JSON.stringify('/api/add-one/1'), location: '/api/add-one/2' }],
    ['a Location of another service', { body: null, location: `/api/other/${GUID}` }],
  ] as [string, PublishAnswer][])('gives null (no owner recorded: Owner only) for %s', (_what, answer) => {
    expect(publishedVersion('add-one', answer)).toBeNull();
  });
});

describe('serviceKey', () => {
  it('joins decoded name and version', () => {
    expect(serviceKey('café', '1.0')).toBe('café/1.0');
  });
});
