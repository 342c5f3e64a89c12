import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { configSchema, type Config } from './schema.ts';

/** Startup refuses a bad config with every problem listed, not just the first. */
export class ConfigError extends Error {
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.name = 'ConfigError';
    this.problems = problems;
  }
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type JsonObject = { [k: string]: Json };

const ENV_PREFIX = 'MLGATE_';
// Short names for the overrides people reach for most.
const ENV_ALIASES: Record<string, string[]> = {
  MLGATE_PORT: ['server', 'port'],
  MLGATE_HOST: ['server', 'host'],
  MLGATE_LOG_LEVEL: ['log', 'level'],
  MLGATE_MODE: ['mode'],
};
// Read by main.ts and the CLI themselves, not config keys.
const ENV_RESERVED = new Set(['MLGATE_CONFIG', 'MLGATE_ADMIN_PASSWORD', 'MLGATE_TOKEN', 'MLGATE_URL']);

/** Variables the config names as secret sources (`…Env` keys, e.g. queryUserPasswordEnv): values, not config keys. */
function secretEnvNames(value: Json, out = new Set<string>()): Set<string> {
  if (value === null || typeof value !== 'object') return out;
  for (const [k, v] of Object.entries(value)) {
    if (k.endsWith('Env') && typeof v === 'string') out.add(v);
    else secretEnvNames(v as Json, out);
  }
  return out;
}

function unwrap(schema: z.ZodType): z.ZodType {
  let s: z.ZodType = schema;
  for (;;) {
    if (s instanceof z.ZodDefault || s instanceof z.ZodOptional || s instanceof z.ZodNullable) {
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodPipe) {
      s = s.in as z.ZodType;
    } else return s;
  }
}

/** Maps MLGATE_SERVER__PORT to ['server','port'] using the schema's own key spelling. */
function envPath(name: string): string[] | string {
  const alias = ENV_ALIASES[name];
  if (alias) return alias;
  return schemaPath(name.slice(ENV_PREFIX.length).split('__'), name);
}

function leafAt(path: string[]): z.ZodType | undefined {
  let node: z.ZodType = configSchema;
  for (const key of path) {
    const obj = unwrap(node);
    if (!(obj instanceof z.ZodObject)) return undefined;
    const next = (obj.shape as Record<string, z.ZodType>)[key];
    if (!next) return undefined;
    node = next;
  }
  return unwrap(node);
}

function schemaPath(parts: string[], name: string): string[] | string {
  const path: string[] = [];
  let node: z.ZodType = configSchema;
  for (const part of parts) {
    const obj = unwrap(node);
    if (!(obj instanceof z.ZodObject)) return `${name}: ${path.join('.') || 'root'} has no sub-keys`;
    const shape = obj.shape as Record<string, z.ZodType>;
    const key = Object.keys(shape).find((k) => k.toLowerCase() === part.toLowerCase().replace(/_/g, ''));
    if (!key) return `${name}: no config key '${[...path, part.toLowerCase()].join('.')}'`;
    path.push(key);
    node = shape[key]!;
  }
  return path;
}

/** Text keys take the value as written; numbers, booleans and lists are read as JSON. */
function envValue(raw: string, path: string[]): Json {
  const leaf = leafAt(path);
  if (leaf instanceof z.ZodString || leaf instanceof z.ZodEnum) return raw;
  try {
    return JSON.parse(raw) as Json;
  } catch {
    return raw;
  }
}

function setPath(target: JsonObject, path: string[], value: Json): void {
  let obj = target;
  for (const key of path.slice(0, -1)) {
    const next = obj[key];
    if (next === undefined || next === null || typeof next !== 'object' || Array.isArray(next)) obj[key] = {};
    obj = obj[key] as JsonObject;
  }
  obj[path[path.length - 1]!] = value;
}

export interface LoadOptions {
  /** YAML (or JSON) file; absent = env and defaults only. */
  file?: string | undefined;
  env?: Record<string, string | undefined>;
  /** Defaults under the file and env (dev mode): the file overrides them, env overrides both. */
  base?: JsonObject;
}

export function loadConfig(opts: LoadOptions = {}): Config {
  const problems: string[] = [];
  let raw: JsonObject = structuredClone(opts.base ?? {});
  if (opts.file) {
    try {
      const parsed = parseYaml(readFileSync(opts.file, 'utf8')) as Json;
      if (parsed !== null && (typeof parsed !== 'object' || Array.isArray(parsed))) {
        problems.push(`${opts.file}: the top level must be a mapping`);
      } else if (parsed) {
        raw = deepMerge(raw, parsed as JsonObject);
      }
    } catch (err) {
      problems.push(`${opts.file}: ${(err as Error).message.split('\n')[0]}`);
    }
  }
  const secrets = secretEnvNames(raw);
  for (const [name, value] of Object.entries(opts.env ?? {})) {
    if (!name.startsWith(ENV_PREFIX) || value === undefined || ENV_RESERVED.has(name) || secrets.has(name)) continue;
    const path = envPath(name);
    if (typeof path === 'string') problems.push(path);
    else setPath(raw, path, envValue(value, path));
  }
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    for (const issue of result.error.issues) {
      problems.push(`${issue.path.join('.') || '(root)'}: ${issue.message}`);
    }
  }
  if (problems.length > 0 || !result.success) throw new ConfigError(problems);
  return result.data;
}

/** Objects merge key by key; anything else (lists included) in b replaces a's. */
export function deepMerge(a: JsonObject, b: JsonObject): JsonObject {
  const out: JsonObject = { ...a };
  for (const [k, v] of Object.entries(b)) {
    const prev = out[k];
    out[k] =
      v && typeof v === 'object' && !Array.isArray(v) && prev && typeof prev === 'object' && !Array.isArray(prev)
        ? deepMerge(prev as JsonObject, v as JsonObject)
        : v;
  }
  return out;
}
