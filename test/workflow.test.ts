import { describe, expect, it } from 'vitest';
import { REQUEST_MACHINE, REQUEST_MOVES } from '../src/services/client-requests.ts';
import { TICKET_MACHINE, TICKET_MOVES } from '../src/services/support-tickets.ts';
import { checkMoves, into, type Move } from '../src/services/workflow.ts';

type Light = 'RED' | 'GREEN' | 'AMBER';
const lights: Record<Light, Light[]> = { RED: ['GREEN'], GREEN: ['AMBER'], AMBER: ['RED'] };
const move = (m: Partial<Move<Light, 'anyone'>>): Move<Light, 'anyone'> => ({
  operation: 'op',
  action: 'ACT',
  who: 'anyone',
  to: 'GREEN',
  ...m,
});

describe('move tables', () => {
  it('start a move wherever the machine leads into its status, unless the table says where', () => {
    expect(into(lights, 'GREEN')).toEqual(['RED']);
    expect(checkMoves(lights, { go: move({}), stay: move({ to: (s) => s, from: ['RED', 'AMBER'] }) })).toEqual({
      go: ['RED'],
      stay: ['RED', 'AMBER'],
    });
  });

  it('refuse a table whose moves the machine does not allow', () => {
    expect(() => checkMoves(lights, { skip: move({ to: 'AMBER', from: ['RED'] }) })).toThrow('Move skip goes from RED to AMBER');
    expect(() => checkMoves(lights, { next: move({ to: () => 'RED', from: ['GREEN'] }) })).toThrow('Move next goes from GREEN to RED');
    expect(() => checkMoves(lights, { any: move({ to: (s) => s }) })).toThrow('Move any needs its start statuses');
  });

  it('hold for the request and ticket tables, with the start statuses their tests expect', () => {
    expect(checkMoves(REQUEST_MACHINE, REQUEST_MOVES)).toMatchObject({
      edit: ['PENDING'],
      withdraw: ['PENDING'],
      approve: ['PENDING'],
      reject: ['PENDING'],
      convert: ['PENDING', 'APPROVED'],
    });
    expect(checkMoves(TICKET_MACHINE, TICKET_MOVES)).toMatchObject({
      IN_PROGRESS: ['OPEN', 'PENDING_USER', 'ESCALATED'],
      PENDING_USER: ['IN_PROGRESS'],
      escalate: ['OPEN', 'IN_PROGRESS', 'PENDING_USER'],
      resolve: ['IN_PROGRESS', 'ESCALATED'],
      close: ['RESOLVED'],
      reopen: ['RESOLVED'],
      rate: ['RESOLVED', 'CLOSED'],
    });
  });
});
