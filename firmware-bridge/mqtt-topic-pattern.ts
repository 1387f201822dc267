/**
 * MQTT subscription patterns whose wildcard levels may carry a field name.
 *
 * A pattern is an MQTT topic filter in which a `+` or `#` level may be
 * followed by a name: `factory/+line/+sensor_id/reading`. The filter sent to
 * the broker drops the names (`factory/+/+/reading`); a topic that matches
 * yields the named levels as fields (`{ line: 'w01', sensor_id: 'aa-101' }`).
 * A named `#` (`site/#rest`) yields the remaining levels joined by `/`
 * (empty when `#` matched the parent level itself, as MQTT allows).
 *
 * Matching follows MQTT 3.1.1 §4.7 / MQTT 5 §4.7: levels are split on `/`
 * (empty levels are levels), `+` matches exactly one level, `#` matches the
 * parent and any number of levels and must be last, and a filter starting
 * with a wildcard does not match topics starting with `$`. A shared
 * subscription `$share/<group>/<filter>` is accepted: the broker gets the
 * whole string, matching uses `<filter>`.
 *
 * Invariant: `match(topic)` is non-null exactly when the broker would deliver
 * `topic` for `filter` (golden tests in mqtt-topic-pattern.test.ts).
 */
import { BridgeError } from './errors.ts';

/** A named level: `+name` (one level) or `#name` (the rest). */
export interface TopicField {
  /** Field name, an identifier: letter or `_`, then letters, digits, `_` or `-`. */
  name: string;
  /** Zero-based level index in the filter (after any `$share/<group>/` prefix). */
  level: number;
  /** `'single'` for `+`, `'rest'` for `#`. */
  kind: 'single' | 'rest';
}

export interface TopicPattern {
  /** The pattern as configured. */
  readonly pattern: string;
  /** The MQTT topic filter to subscribe with (names removed, `$share/` prefix kept). */
  readonly filter: string;
  /** Named levels in level order. */
  readonly fields: readonly TopicField[];
  /** Field values of a matching topic, or null when the topic does not match. Unnamed wildcards yield nothing. */
  match(topic: string): Record<string, string> | null;
}

/** A pattern that is not a valid subscription: a BRIDGE_CONFIG error; `level` is the 0-based level at fault (-1: the whole pattern). */
export class TopicPatternError extends BridgeError {
  readonly pattern: string;
  readonly level: number;

  constructor(pattern: string, level: number, reason: string) {
    super('BRIDGE_CONFIG', `invalid MQTT subscription ${JSON.stringify(pattern)}${level >= 0 ? ` at level ${level + 1}` : ''}: ${reason}`, { pattern, level });
    this.name = 'TopicPatternError';
    this.pattern = pattern;
    this.level = level;
  }
}

const FIELD_NAME = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/** MQTT caps a topic or filter at 65535 UTF-8 bytes. */
const MAX_TOPIC_BYTES = 65_535;

type Level = { kind: 'literal'; text: string } | { kind: 'single' | 'rest'; name: string | null };

/** Parses and validates a pattern; throws TopicPatternError naming the level at fault. */
export function parseTopicPattern(pattern: string): TopicPattern {
  if (typeof pattern !== 'string' || pattern.length === 0) {
    throw new TopicPatternError(String(pattern), -1, 'empty');
  }
  if (pattern.includes('\u0000')) throw new TopicPatternError(pattern, -1, 'contains NUL');

  let prefix = '';
  let body = pattern;
  if (pattern.startsWith('$share/')) {
    const groupEnd = pattern.indexOf('/', 7);
    const group = groupEnd < 0 ? '' : pattern.slice(7, groupEnd);
    if (groupEnd < 0 || group.length === 0 || /[+#]/.test(group)) {
      throw new TopicPatternError(pattern, -1, 'a shared subscription is $share/<group>/<filter> with a group name free of + and #');
    }
    prefix = pattern.slice(0, groupEnd + 1);
    body = pattern.slice(groupEnd + 1);
    if (body.length === 0) throw new TopicPatternError(pattern, -1, 'shared subscription without a filter');
  }

  const parts = body.split('/');
  const levels: Level[] = [];
  const fields: TopicField[] = [];
  const seen = new Set<string>();
  parts.forEach((part, i) => {
    const head = part[0];
    if (head === '+' || head === '#') {
      const name = part.slice(1);
      if (name.length > 0 && !FIELD_NAME.test(name)) {
        throw new TopicPatternError(pattern, i, `${JSON.stringify(part)}: a wildcard takes the whole level, optionally followed by a field name (letters, digits, _ and -)`);
      }
      if (head === '#' && i !== parts.length - 1) throw new TopicPatternError(pattern, i, '# must be the last level');
      const kind = head === '+' ? 'single' : 'rest';
      if (name.length > 0) {
        if (seen.has(name)) throw new TopicPatternError(pattern, i, `field ${JSON.stringify(name)} named twice`);
        seen.add(name);
        fields.push({ name, level: i, kind });
      }
      levels.push({ kind, name: name.length > 0 ? name : null });
    } else {
      if (/[+#]/.test(part)) {
        throw new TopicPatternError(pattern, i, `${JSON.stringify(part)}: + and # may only start a level`);
      }
      levels.push({ kind: 'literal', text: part });
    }
  });

  const filter =
    prefix +
    levels.map((l) => (l.kind === 'literal' ? l.text : l.kind === 'single' ? '+' : '#')).join('/');
  if (Buffer.byteLength(filter, 'utf8') > MAX_TOPIC_BYTES) {
    throw new TopicPatternError(pattern, -1, `longer than ${MAX_TOPIC_BYTES} bytes`);
  }
  const wildcardFirst = levels[0]!.kind !== 'literal';

  function match(topic: string): Record<string, string> | null {
    if (topic.length === 0 || /[+#]/.test(topic)) return null;
    if (wildcardFirst && topic.startsWith('$')) return null;
    const tl = topic.split('/');
    const out: Record<string, string> = {};
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      if (level.kind === 'rest') {
        if (level.name !== null) out[level.name] = tl.slice(i).join('/');
        return out;
      }
      if (i >= tl.length) return null;
      if (level.kind === 'literal') {
        if (level.text !== tl[i]) return null;
      } else if (level.name !== null) {
        out[level.name] = tl[i]!;
      }
    }
    return tl.length === levels.length ? out : null;
  }

  return Object.freeze({ pattern, filter, fields: Object.freeze(fields), match });
}
