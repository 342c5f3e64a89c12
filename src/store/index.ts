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
} from './types.ts';
export { MemoryTokenStore } from './memory.ts';
export { createStore } from './factory.ts';
