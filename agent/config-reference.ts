/**
 * Renders the configuration reference (docs/CONFIG.md) from `configSchema`,
 * so the documentation of every option, its default and unit is the schema
 * itself. A test keeps the committed file equal to this output.
 */
import { configSchema } from './config-schema.ts';

type Schema = {
  type?: string | string[];
  description?: string;
  default?: unknown;
  enum?: unknown[];
  properties?: Record<string, Schema>;
  additionalProperties?: boolean | Schema;
  items?: Schema;
  required?: string[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
};

function typeOf(s: Schema): string {
  if (s.enum) return s.enum.map((v) => `\`${String(v)}\``).join(' \\| ');
  if (s.type === 'array') return `list of ${s.items ? typeOf(s.items) : 'any'}`;
  if (Array.isArray(s.type)) return s.type.join(' \\| ');
  return s.type ?? 'any';
}

function bounds(s: Schema): string {
  const parts: string[] = [];
  if (s.minimum !== undefined) parts.push(`≥ ${s.minimum}`);
  if (s.maximum !== undefined) parts.push(`≤ ${s.maximum}`);
  return parts.join(', ');
}

function rows(s: Schema, path: string, out: string[]): void {
  const props = s.properties ?? {};
  for (const [key, child] of Object.entries(props)) {
    const p = path ? `${path}.${key}` : key;
    const def = child.default === undefined ? '' : `\`${JSON.stringify(child.default)}\``;
    const req = s.required?.includes(key) ? 'yes' : '';
    const b = bounds(child);
    out.push(`| \`${p}\` | ${typeOf(child)}${b ? ` (${b})` : ''} | ${def} | ${req} | ${(child.description ?? '').replace(/\|/g, '\\|')} |`);
    if (child.type === 'object' && child.properties) rows(child, p, out);
    if (child.type === 'object' && typeof child.additionalProperties === 'object') rows(child.additionalProperties, `${p}.<name>`, out);
    if (child.type === 'array' && child.items?.properties) rows(child.items, `${p}[]`, out);
  }
}

export function renderConfigReference(): string {
  const out: string[] = [
    '# Configuration reference',
    '',
    '<!-- Generated from agent/config-schema.ts by `millstream config reference`; do not edit by hand. -->',
    '',
    'The agent reads one YAML file (`millstream run --config FILE`; check it with `millstream config check FILE`).',
    'Unknown keys are errors. Relative paths are relative to the config file. Units are in the key names',
    '(`Ms` milliseconds, `Bytes` bytes, `S` seconds). See `systemd/millstream.example.yaml` for a full example.',
    '',
    '| key | type | default | required | meaning |',
    '|---|---|---|---|---|',
  ];
  rows(configSchema as Schema, '', out);
  out.push('');
  return out.join('\n');
}
