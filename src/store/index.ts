export type {
  TokenStore,
  IdentitySnapshot,
  RefreshRecord,
  StoredRefresh,
  RotateOutcome,
  RotateRequest,
  FamilySummary,
  RevocationEntry,
  StoreTimings,
  Page,
  OwnerRecord,
} from './types.ts';
export { MemoryTokenStore } from './memory.ts';
export { RedisTokenStore, RedisStoreError, type RedisStoreOptions, type RedisEndpoint } from './redis.ts';
export { createStore, redisOptions, type StoreLog } from './factory.ts';
