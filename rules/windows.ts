/**
 * Window assignment and closing on event time (ms since the epoch).
 *
 * Time windows (tumbling, hopping) are `[start, start + sizeMs)`, starts
 * aligned to the epoch in steps of `advanceMs` (tumbling: advance = size).
 * Session windows are `[first, last]` event times of a group's records, no
 * two records of one session further apart than `gapMs`.
 *
 * Stream time is the largest event time a rule has seen. Closing rules
 * (Kafka Streams' semantics, so ksqlDB users see what they expect):
 *  - a time window is closed once `end + graceMs <= streamTime`;
 *  - a session is closed once `last + gapMs + graceMs < streamTime`;
 *  - a record is late when every window it falls in is closed (for sessions:
 *    `ts + graceMs < streamTime`); late records go to the `_late` topic.
 * An idle close (no input for `idleCloseMs` of wall clock) closes every open
 * window by advancing stream time to `closeAllStreamTime`, so records that
 * still fall in those windows afterwards are late by the same rules.
 */
import type { WindowPlan } from './plan.ts';

/** Floor division that stays correct for negative times (before 1970). */
function alignDown(ts: number, step: number): number {
  return ts - (((ts % step) + step) % step);
}

/**
 * Writes the starts of the time windows containing `ts` into `out`
 * (ascending) and returns how many. `out` is reused by the caller so the hot
 * path allocates nothing.
 */
export function assignTimeWindows(window: { sizeMs: number; advanceMs: number }, ts: number, out: number[]): number {
  const last = alignDown(ts, window.advanceMs);
  let first = last;
  while (first - window.advanceMs > ts - window.sizeMs) first -= window.advanceMs;
  let n = 0;
  for (let s = first; s <= last; s += window.advanceMs) if (s + window.sizeMs > ts) out[n++] = s;
  return n;
}

/** True when the time window ending at `endMs` (exclusive) is closed at `streamTime`. */
export function timeWindowClosed(endMs: number, graceMs: number, streamTime: number): boolean {
  return endMs + graceMs <= streamTime;
}

/** True when the session whose last record is at `lastMs` is closed at `streamTime`. */
export function sessionClosed(lastMs: number, gapMs: number, graceMs: number, streamTime: number): boolean {
  return lastMs + gapMs + graceMs < streamTime;
}

/** The stream time at which a window (end exclusive for time windows, last record for sessions) closes. */
export function closeTime(window: WindowPlan, endMs: number): number {
  return window.kind === 'session' ? endMs + window.gapMs + window.graceMs + 1 : endMs + window.graceMs;
}

/**
 * The sessions (as `[first, last]` pairs, sorted by first, not overlapping
 * within `gapMs`) that a record at `ts` joins: indices `[from, to)` of the
 * run of sessions with `first - gapMs <= ts <= last + gapMs`. Empty
 * (`from === to`) when the record starts a new session at insertion index
 * `from`.
 */
export function sessionSpan(sessions: ReadonlyArray<{ start: number; end: number }>, ts: number, gapMs: number): [number, number] {
  let from = 0;
  while (from < sessions.length && sessions[from]!.end + gapMs < ts) from++;
  let to = from;
  while (to < sessions.length && sessions[to]!.start - gapMs <= ts) to++;
  return [from, to];
}
