// The configuration reference in the README is generated from the schema, so the two cannot drift apart.
import { z } from 'zod';
import { configSchema } from './schema.ts';

interface Row {
  key: string;
  type: string;
  def: string;
  description: string;
}

function typeName(s: z.ZodType): string {
  if (s instanceof z.ZodEnum) return (s.options as string[]).map((o) => `\`${o}\``).join(' \\| ');
  if (s instanceof z.ZodArray) return `list of ${typeName(s.element as z.ZodType)}`;
  if (s instanceof z.ZodObject) return 'object';
  if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).map((o) => typeName(o)).join(' \\| ');
  if (s instanceof z.ZodLiteral) return `\`${JSON.stringify(s.value)}\``;
  if (s instanceof z.ZodNumber) return 'number';
  if (s instanceof z.ZodBoolean) return 'boolean';
  if (s instanceof z.ZodString) return 'string';
  return s.type;
}

function walk(schema: z.ZodType, key: string, rows: Row[], inheritedDescription?: string): void {
  let s = schema;
  let def: unknown;
  let optional = false;
  const description = schema.description ?? inheritedDescription ?? '';
  for (;;) {
    if (s instanceof z.ZodDefault) {
      def = s.def.defaultValue;
      s = s.unwrap() as z.ZodType;
    } else if (s instanceof z.ZodOptional) {
      optional = true;
      s = s.unwrap() as z.ZodType;
    } else break;
  }
  if (s instanceof z.ZodObject) {
    if (key && description) rows.push({ key, type: 'object', def: optional ? '(optional)' : '', description });
    for (const [k, v] of Object.entries(s.shape as Record<string, z.ZodType>)) walk(v, key ? `${key}.${k}` : k, rows);
    return;
  }
  if (s instanceof z.ZodArray && s.element instanceof z.ZodObject) {
    rows.push({ key, type: 'list of object', def: def === undefined ? (optional ? '(none)' : '**required**') : `\`${JSON.stringify(def)}\``, description });
    for (const [k, v] of Object.entries(s.element.shape as Record<string, z.ZodType>)) walk(v, `${key}[].${k}`, rows);
    return;
  }
  const shown =
    def === undefined ? (optional ? '(none)' : '**required**') : Array.isArray(def) && def.length === 0 ? '`[]`' : `\`${JSON.stringify(def)}\``;
  rows.push({ key, type: typeName(s), def: shown, description: description || (s.description ?? '') });
}

export function configReference(): string {
  const rows: Row[] = [];
  walk(configSchema, '', rows);
  const esc = (t: string) => t.replace(/\|/g, '\\|').replace(/\n/g, ' ');
  return [
    '| key | type | default | meaning |',
    '|---|---|---|---|',
    ...rows.map((r) => `| \`${r.key}\` | ${r.type} | ${esc(r.def)} | ${esc(r.description)} |`),
  ].join('\n');
}
