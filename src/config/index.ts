export { configSchema, type Config, type ConfigInput } from './schema.ts';
export { loadConfig, ConfigError, type LoadOptions } from './load.ts';
export { productionProblems } from './production.ts';
