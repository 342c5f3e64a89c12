export { configSchema, type Config, type ConfigInput } from './schema.ts';
export { loadConfig, ConfigError, deepMerge, type LoadOptions, type JsonObject } from './load.ts';
export { productionProblems } from './production.ts';
