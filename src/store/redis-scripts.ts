// The Lua scripts of the Redis TokenStore. Each one touches the keys of ONE hash tag (one Cluster slot) and only
// keys passed in KEYS, so it runs unchanged on standalone, Sentinel and Cluster; mlgRotateIndexed, the one
// exception, also writes the new token's index entry (another slot) and is used only outside Cluster. Registered through ioredis'
// `scripts` option: EVALSHA, and EVAL again after NOSCRIPT (SCRIPT FLUSH, a failover to a replica whose script
// cache is empty).
//
// Numbers: Lua numbers are doubles; ms timestamps (~1.8e12) are exact, but tostring() would print them in
// exponent form, so every computed number goes back to Redis through n() ('%.0f').
//
// Family keys (tag {fam:<id>}):
//   f  hash   sub prov start last fexp live addr     the family (subject, provider, started, last used,
//                                                    family end, latest token expiry, client address)
//             r:<hash> -> RefreshRecord JSON          one field per refresh token of the family
//             u:<hash> -> usedAt                      set when that token was consumed by a rotation
//             n:<hash> -> successor hash              the token that rotation stored (for the grace replay)
//   x  zset   <hash> -> expiresAt                     expiry of each token, to prune expired fields
//   s  string sealed successor of one token           only for the reuse grace window (PX)
//   t  string tombstone                               the family was revoked: it may not be (re)created
//                                                    (after a reuse: '<newHash> <subject>' of the request that saw it)
// Both f and x expire with the family (min(family end, latest token expiry)).

const HELPERS = `
local function n(x) return string.format('%.0f', x) end
local function expire_at_least(key, ttl)
  local cur = redis.call('PTTL', key)
  if cur >= 0 and cur >= ttl then return end
  redis.call('PEXPIRE', key, n(ttl))
end
`;

/**
 * createFamily. KEYS: f, x, t. ARGV: hash, recordJson, expiresAt, subject, provider, startedAt, issuedAt,
 * familyExpiresAt, clientAddress ('' = none), now. Returns 1, or 0 when the family was revoked (tombstone).
 */
const CREATE = `${HELPERS}
if redis.call('EXISTS', KEYS[3]) == 1 then return 0 end
local now = tonumber(ARGV[10])
local live = tonumber(ARGV[3])
local fexp = tonumber(ARGV[8])
local ttl = math.min(live, fexp) - now
if ttl <= 0 then return 1 end
redis.call('HSET', KEYS[1], 'sub', ARGV[4], 'prov', ARGV[5], 'start', ARGV[6], 'last', ARGV[7],
  'fexp', ARGV[8], 'live', ARGV[3], 'addr', ARGV[9], 'r:' .. ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('PEXPIRE', KEYS[1], n(ttl))
redis.call('PEXPIRE', KEYS[2], n(ttl))
return 1
`;

/** getRefresh. KEYS: f. ARGV: hash. Returns false, or {fexp, recordJson, usedAt or ''}. */
const GET = `
local m = redis.call('HMGET', KEYS[1], 'fexp', 'r:' .. ARGV[1], 'u:' .. ARGV[1])
if not m[1] or not m[2] then return false end
return {m[1], m[2], m[3] or ''}
`;

/**
 * rotate: rotation, reuse detection and grace replay in one step; this script alone decides.
 * KEYS: f, x, s (successor of the old token), t; outside Cluster (mlgRotateIndexed) also the new token's index key
 * and the revocation entries' e and d.
 * ARGV: oldHash, newHash, newRecordJson, newExpiresAt, now, graceMs, sealed ('' = none), revocationTtlMs,
 *       channel, familyRevocationJson, familyId, newIndexTtlMs (the last two for the index key).
 * Returns {'rotated'} | {'replayed', sealed, successorHash, successorTtlMs} | {'reused', subject} | {'invalid'}.
 * A replay names the successor's hash and how long it lives ('' and 0 when unknown or gone), so that the caller can
 * write its index entry again: the rotation's own index write may have gone to a master that a failover dropped.
 * Idempotent per request (newHash is random per request): the same call run again, because its answer was lost
 * (a timeout, a cut connection, ioredis resending it after a reconnect), answers what the first run did
 * ('rotated', or 'reused' from the tombstone), never a reuse of its own rotation.
 */
const ROTATE = `${HELPERS}
local f, x = KEYS[1], KEYS[2]
local old = ARGV[1]
local now = tonumber(ARGV[5])
local m = redis.call('HMGET', f, 'fexp', 'r:' .. old, 'u:' .. old, 'sub', 'live')
local fexp = tonumber(m[1])
if not fexp or not m[2] then
  local t = redis.call('GET', KEYS[4])
  if t and string.sub(t, 1, #ARGV[2] + 1) == ARGV[2] .. ' ' then return {'reused', string.sub(t, #ARGV[2] + 2)} end
  return {'invalid'}
end
local exp = tonumber(redis.call('ZSCORE', x, old))
if not exp or exp <= now or fexp <= now then return {'invalid'} end
local used = tonumber(m[3])
if used then
  if redis.call('HGET', f, 'n:' .. old) == ARGV[2] then return {'rotated'} end
  local sealed = redis.call('GET', KEYS[3])
  if sealed and now - used <= tonumber(ARGV[6]) then
    -- A write, so that a WAIT after it also covers the rotation that stored this successor (made on another
    -- connection): a successor is never handed out before a replica has it.
    redis.call('HSET', f, 'last', ARGV[5])
    local succ = redis.call('HGET', f, 'n:' .. old)
    local sttl = 0
    if succ and redis.call('HEXISTS', f, 'r:' .. succ) == 1 then
      local sexp = tonumber(redis.call('ZSCORE', x, succ))
      if sexp then sttl = math.min(sexp, fexp) - now end
    end
    if sttl <= 0 then succ = '' end
    return {'replayed', sealed, succ or '', n(math.max(sttl, 0))}
  end
  -- A consumed token presented again: theft or a broken client. End the family; announce it at once.
  redis.call('DEL', f, x, KEYS[3])
  -- The tombstone names the request that ended the family, for a re-run of it (see above).
  redis.call('SET', KEYS[4], ARGV[2] .. ' ' .. (m[4] or ''), 'PX', ARGV[8])
  redis.call('PUBLISH', ARGV[9], ARGV[10])
  if KEYS[6] then
    -- The stored entry with the announcement: a view reloaded later must not bring the family's access tokens back.
    local id = 'family:' .. ARGV[11]
    redis.call('HSET', KEYS[6], id, ARGV[10])
    redis.call('ZADD', KEYS[7], n(now + tonumber(ARGV[8])), id)
    expire_at_least(KEYS[6], tonumber(ARGV[8]))
    expire_at_least(KEYS[7], tonumber(ARGV[8]))
  end
  return {'reused', m[4] or ''}
end
local newExp = tonumber(ARGV[4])
redis.call('HSET', f, 'u:' .. old, ARGV[5], 'n:' .. old, ARGV[2], 'r:' .. ARGV[2], ARGV[3], 'last', ARGV[5])
redis.call('ZADD', x, ARGV[4], ARGV[2])
local live = math.max(tonumber(m[5]) or 0, newExp)
redis.call('HSET', f, 'live', n(live))
-- Tokens past their expiry can no longer be used or reused: drop them so a long family stays small.
local dead = redis.call('ZRANGEBYSCORE', x, '-inf', ARGV[5], 'LIMIT', 0, 100)
for _, h in ipairs(dead) do
  redis.call('HDEL', f, 'r:' .. h, 'u:' .. h, 'n:' .. h)
  redis.call('ZREM', x, h)
end
local grace = tonumber(ARGV[6])
if grace > 0 and ARGV[7] ~= '' then
  -- Kept sealed, and only for the window (+1 s for clock skew between instances; the window itself is checked above).
  redis.call('SET', KEYS[3], ARGV[7], 'PX', n(grace + 1000))
end
local ttl = math.min(live, fexp) - now
redis.call('PEXPIRE', f, n(ttl))
redis.call('PEXPIRE', x, n(ttl))
-- Written with the rotation it points to: the token handed out is findable exactly when it was stored.
if KEYS[5] then redis.call('SET', KEYS[5], ARGV[11], 'PX', ARGV[12]) end
return {'rotated'}
`;

/**
 * revokeFamily (family part). KEYS: f, x, t. ARGV: revocationTtlMs, channel, message ('' = do not publish).
 * Returns the family's subject, or false when the family was unknown (expired or already revoked).
 */
const REVOKE_FAMILY = `
local sub = redis.call('HGET', KEYS[1], 'sub')
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('SET', KEYS[3], '1', 'PX', ARGV[1])
if ARGV[3] ~= '' then redis.call('PUBLISH', ARGV[2], ARGV[3]) end
return sub or false
`;

/**
 * Subject index (tag {sub:<subject>}): i = zset familyId -> familyExpiresAt, b = the subject's not-before (ms).
 * addFamily. KEYS: i, b. ARGV: familyId, familyStartedAt, familyExpiresAt, now.
 * Returns 1, or 0 when the family started at or before a revocation of its subject (a login that raced it).
 */
const SUBJECT_ADD = `${HELPERS}
local nbf = tonumber(redis.call('GET', KEYS[2]))
if nbf and tonumber(ARGV[2]) <= nbf then return 0 end
local now = tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[4])
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
expire_at_least(KEYS[1], tonumber(ARGV[3]) - now)
return 1
`;

/**
 * revokeSubject (subject part). KEYS: i, b. ARGV: notBefore, revocationTtlMs.
 * Records the not-before, empties the index and returns the family ids it held.
 */
const SUBJECT_REVOKE = `
local cur = tonumber(redis.call('GET', KEYS[2]))
if not cur or cur < tonumber(ARGV[1]) then redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2]) end
local fams = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return fams
`;

/**
 * Revocation entries (tag {rev}): e = hash id -> entry JSON, d = zset id -> until.
 * add. KEYS: e, d. ARGV: now, channel, publish ('1'/'0'), then (id, json, until) triples.
 */
const REVOCATION_ADD = `${HELPERS}
local now = tonumber(ARGV[1])
local dead = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, 1000)
for _, id in ipairs(dead) do
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
end
local maxUntil = 0
for i = 4, #ARGV, 3 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], ARGV[i + 2], ARGV[i])
  if ARGV[3] == '1' then redis.call('PUBLISH', ARGV[2], ARGV[i + 1]) end
  maxUntil = math.max(maxUntil, tonumber(ARGV[i + 2]))
end
if maxUntil > now then
  expire_at_least(KEYS[1], maxUntil - now)
  expire_at_least(KEYS[2], maxUntil - now)
end
return 1
`;

export interface ScriptDef {
  lua: string;
  numberOfKeys: number;
  readOnly?: boolean;
}

/** Names become ioredis commands; prefixed so they cannot shadow a Redis command. */
export const SCRIPTS = {
  mlgCreateFamily: { lua: CREATE, numberOfKeys: 3 },
  mlgGetRefresh: { lua: GET, numberOfKeys: 1, readOnly: true },
  mlgRotate: { lua: ROTATE, numberOfKeys: 4 },
  mlgRotateIndexed: { lua: ROTATE, numberOfKeys: 7 },
  mlgRevokeFamily: { lua: REVOKE_FAMILY, numberOfKeys: 3 },
  mlgSubjectAdd: { lua: SUBJECT_ADD, numberOfKeys: 2 },
  mlgSubjectRevoke: { lua: SUBJECT_REVOKE, numberOfKeys: 2 },
  mlgRevocationAdd: { lua: REVOCATION_ADD, numberOfKeys: 2 },
} as const satisfies Record<string, ScriptDef>;

export type ScriptName = keyof typeof SCRIPTS;
