import { describe, expect, it } from 'vitest';
import type { Prisma, TicketPriority } from '../src/generated/prisma/client.ts';
import {
  breachedWhere,
  DEFAULT_SLA,
  dueTimes,
  firstResponseRule,
  pauseOnMove,
  slaState,
  targetsFor,
  type SlaTimes,
} from '../src/services/sla.ts';
import type { Viewer } from '../src/services/viewer.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const T0 = new Date('2026-03-02T09:00:00.000Z');
const at = (ms: number) => new Date(T0.getTime() + ms);

/** A HIGH ticket opened at T0 (first response due after 4 h, resolution after 24 h), as it is stored. */
function ticket(times: Partial<SlaTimes> = {}): SlaTimes {
  return { firstResponseAt: null, resolvedAt: null, pendingSince: null, pausedMs: 0, ...dueTimes(T0, DEFAULT_SLA.HIGH), ...times };
}

describe('SLA targets and due times', () => {
  it.each([
    ['URGENT', 1, 4],
    ['HIGH', 4, 24],
    ['MEDIUM', 8, 72],
    ['LOW', 24, 120],
  ] as const)('%s: first response %i h, resolution %i h after the start', (priority, firstHours, resolutionHours) => {
    expect(dueTimes(T0, DEFAULT_SLA[priority])).toEqual({
      firstResponseDueAt: at(firstHours * HOUR),
      resolutionDueAt: at(resolutionHours * HOUR),
    });
  });

  it('moves both due times on by the time already waited', () => {
    expect(dueTimes(T0, { firstResponseMinutes: 60, resolutionMinutes: 240 }, 10 * HOUR)).toEqual({
      firstResponseDueAt: at(11 * HOUR),
      resolutionDueAt: at(14 * HOUR),
    });
  });

  it("lists every priority in order, the organization's own targets over the defaults", () => {
    const targets = targetsFor([{ priority: 'LOW', firstResponseMinutes: 600, resolutionMinutes: 6000 }]);
    expect(targets).toEqual([
      { priority: 'LOW', firstResponseMinutes: 600, resolutionMinutes: 6000 },
      { priority: 'MEDIUM', ...DEFAULT_SLA.MEDIUM },
      { priority: 'HIGH', ...DEFAULT_SLA.HIGH },
      { priority: 'URGENT', ...DEFAULT_SLA.URGENT },
    ]);
    expect(targetsFor([]).map((t) => t.priority)).toEqual<TicketPriority[]>(['LOW', 'MEDIUM', 'HIGH', 'URGENT']);
  });
});

/** Times of a HIGH ticket (due 4 h and 24 h after T0), the time asked, and what the clocks say then. */
const cases: [string, Partial<SlaTimes>, number, { first: boolean; resolution: boolean; shift?: number }][] = [
  ['running, before the first due time', {}, 3 * HOUR, { first: false, resolution: false }],
  ['running, first due time passed without a response', {}, 5 * HOUR, { first: true, resolution: false }],
  ['running, both due times passed', {}, 25 * HOUR, { first: true, resolution: true }],
  ['answered in time, long after', { firstResponseAt: at(1 * HOUR) }, 20 * HOUR, { first: false, resolution: false }],
  ['answered late, stays breached', { firstResponseAt: at(5 * HOUR) }, 6 * HOUR, { first: true, resolution: false }],
  ['answered exactly at the due time', { firstResponseAt: at(4 * HOUR) }, 6 * HOUR, { first: false, resolution: false }],
  [
    'resolved in time, days later',
    { firstResponseAt: at(HOUR), resolvedAt: at(10 * HOUR) },
    100 * HOUR,
    { first: false, resolution: false },
  ],
  ['resolved late', { firstResponseAt: at(HOUR), resolvedAt: at(30 * HOUR) }, 31 * HOUR, { first: false, resolution: true }],
  // Waiting since 3 h: the clocks stopped there, and the due times move on while the wait lasts.
  [
    'waiting since before the due time, long after',
    { pendingSince: at(3 * HOUR) },
    50 * HOUR,
    { first: false, resolution: false, shift: 47 * HOUR },
  ],
  [
    'waiting since after the first due time',
    { pendingSince: at(5 * HOUR) },
    50 * HOUR,
    { first: true, resolution: false, shift: 45 * HOUR },
  ],
];

describe('SLA clocks', () => {
  const fields = Object.fromEntries(
    ['firstResponseAt', 'resolvedAt', 'firstResponseDueAt', 'resolutionDueAt', 'pendingSince'].map((name) => [name, { name }]),
  ) as unknown as Prisma.SupportTicketFieldRefs;

  it.each(cases)('%s', (_name, times, now, expected) => {
    const row = ticket(times);
    const state = slaState(row, at(now));
    expect(state).toEqual({
      firstResponseDueAt: at(4 * HOUR + (expected.shift ?? 0)),
      resolutionDueAt: at(24 * HOUR + (expected.shift ?? 0)),
      firstResponseBreached: expected.first,
      resolutionBreached: expected.resolution,
    });
    // The breach filter of the queue says the same as the clocks.
    expect(matches(breachedWhere(at(now), fields), row)).toBe(expected.first || expected.resolution);
  });

  it('pauses on entering PENDING_USER and moves the due times on when it leaves', () => {
    const start = ticket();
    expect(pauseOnMove(start, 'IN_PROGRESS', at(HOUR))).toEqual({});
    expect(pauseOnMove(start, 'PENDING_USER', at(3 * HOUR))).toEqual({ pendingSince: at(3 * HOUR) });
    const waiting = ticket({ pendingSince: at(3 * HOUR) });
    // Staying in PENDING_USER (a priority change, say) keeps the pause as it is.
    expect(pauseOnMove(waiting, 'PENDING_USER', at(5 * HOUR))).toEqual({});
    const back = { ...waiting, ...pauseOnMove(waiting, 'IN_PROGRESS', at(13 * HOUR)) };
    expect(back).toMatchObject({
      pendingSince: null,
      pausedMs: 10 * HOUR,
      firstResponseDueAt: at(14 * HOUR),
      resolutionDueAt: at(34 * HOUR),
    });
    expect(slaState(back, at(13 * HOUR + 30 * MINUTE))).toMatchObject({ firstResponseBreached: false });
    expect(slaState(back, at(15 * HOUR))).toMatchObject({ firstResponseBreached: true, resolutionBreached: false });
    // A second wait adds to the first.
    const again = { ...back, ...pauseOnMove({ ...back, pendingSince: at(20 * HOUR) }, 'RESOLVED', at(22 * HOUR)) };
    expect(again).toMatchObject({ pausedMs: 12 * HOUR, firstResponseDueAt: at(16 * HOUR), resolutionDueAt: at(36 * HOUR) });
    // A new priority counts from the start, the time waited included.
    expect(dueTimes(T0, DEFAULT_SLA.URGENT, again.pausedMs)).toEqual({ firstResponseDueAt: at(13 * HOUR), resolutionDueAt: at(16 * HOUR) });
  });
});

describe('the first response', () => {
  const viewer = (role: Viewer['role']): Viewer => ({ id: 'u1', organizationId: 'o1', role, username: 'u', displayName: 'U' });
  const rule = firstResponseRule(() => at(HOUR));

  it('concerns sends by staff only', () => {
    for (const role of ['MEMBER', 'CLIENT'] as const) expect(rule(viewer(role), 'c1')).toBeNull();
    for (const role of ['OWNER', 'ADMIN', 'STAFF'] as const) {
      const statement = rule(viewer(role), 'c1')!;
      expect(statement.sql).toContain('"firstResponseAt" IS NULL');
      expect(statement.values).toEqual([at(HOUR), 'c1', 'u1']);
    }
  });
});

/** Evaluates the subset of Prisma filters that `breachedWhere` builds against a row. */
function matches(where: Prisma.SupportTicketWhereInput, row: SlaTimes): boolean {
  const value = (operand: unknown) => (operand instanceof Date ? operand : row[(operand as { name: keyof SlaTimes }).name]);
  if (where.OR) return where.OR.some((w) => matches(w, row));
  return Object.entries(where).every(([field, condition]) => {
    const actual = row[field as keyof SlaTimes] as Date | null;
    if (condition === null) return actual === null;
    const { lt, gt } = condition as { lt?: unknown; gt?: unknown };
    const bound = value(lt ?? gt) as Date | null;
    if (actual === null || bound === null) return false; // SQL: a comparison with NULL is not true
    return lt !== undefined ? actual < bound : actual > bound;
  });
}
