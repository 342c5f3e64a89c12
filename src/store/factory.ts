// Builds the configured TokenStore.
import type { Config } from '../config/index.ts';
import { MemoryTokenStore } from './memory.ts';
import type { StoreTimings, TokenStore } from './types.ts';

export async function createStore(store: Config['store'], timings: StoreTimings): Promise<TokenStore> {
  switch (store.kind) {
    case 'memory':
      return new MemoryTokenStore(timings);
  }
}
