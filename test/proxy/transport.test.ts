// The forwarding-engine contract (transport-contract.ts), once per engine: proxy.engine hpm and undici.
import { describe } from 'vitest';
import { transportContract } from './transport-contract.ts';

describe.each(['hpm', 'undici'] as const)('engine %s', (engine) => {
  transportContract(engine);
});
