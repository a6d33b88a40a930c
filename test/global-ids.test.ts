// Global IDs resolve without a promise unless their resolver returns one
// (src/schema/global-ids.ts): a live event's shared execution then finishes in
// the call that received the event. Executed against the schema directly,
// since what is tested is whether graphql-js gets a value or a promise.
import SchemaBuilder from '@pothos/core';
import RelayPlugin, { encodeGlobalID } from '@pothos/plugin-relay';
import { execute, isSchema, parse, type ExecutionResult } from 'graphql';
import { describe, expect, it } from 'vitest';
import '../src/schema/global-ids.ts';
import { schema } from '../src/schema/index.ts';

const ids = {
  channel: '0193a2b4-0000-7000-8000-000000000001',
  user: '0193a2b4-0000-7000-8000-000000000002',
  message: '0193a2b4-0000-7000-8000-000000000003',
};
const createdAt = '2026-11-30T00:00:00.000Z';

const isPromise = (value: unknown): value is Promise<unknown> => typeof (value as Promise<unknown> | null)?.then === 'function';

describe('global IDs', () => {
  it('are computed synchronously for a live message event, node ids and id lists included', () => {
    expect(isSchema(schema)).toBe(true);
    const added = {
      channelId: ids.channel,
      seq: 5,
      type: 'MESSAGE_ADDED',
      actorId: ids.user,
      createdAt,
      payload: {
        id: ids.message,
        channelId: ids.channel,
        seq: 5,
        senderId: ids.user,
        body: 'hi',
        parentId: null,
        clientMessageId: 'k',
        customFields: null,
        editedAt: null,
        deletedAt: null,
        createdAt,
      },
    };
    const membersAdded = {
      channelId: ids.channel,
      seq: 6,
      type: 'MEMBER_ADDED',
      actorId: ids.user,
      createdAt,
      payload: { userIds: [ids.user] },
    };
    const document = parse(`subscription($c: ID!) {
      channelEvents(channelId: $c) {
        seq channelId actorId
        ... on MessageAddedEvent { message { id clientMessageId createdAt } }
        ... on MemberAddedEvent { userIds }
      }
    }`);
    const run = (event: object) =>
      execute({ schema, document, rootValue: event, contextValue: {}, variableValues: { c: encodeGlobalID('Channel', ids.channel) } });

    const first = run(added);
    expect(isPromise(first)).toBe(false);
    expect((first as ExecutionResult).errors).toBeUndefined();
    expect(JSON.parse(JSON.stringify((first as ExecutionResult).data))).toEqual({
      channelEvents: {
        seq: 5,
        channelId: encodeGlobalID('Channel', ids.channel),
        actorId: encodeGlobalID('User', ids.user),
        message: { id: encodeGlobalID('Message', ids.message), clientMessageId: 'k', createdAt },
      },
    });

    const second = run(membersAdded);
    expect(isPromise(second)).toBe(false);
    expect((second as ExecutionResult).data).toEqual({
      channelEvents: {
        seq: 6,
        channelId: encodeGlobalID('Channel', ids.channel),
        actorId: encodeGlobalID('User', ids.user),
        userIds: [encodeGlobalID('User', ids.user)],
      },
    });
  });

  it('still wait for resolvers that return promises', async () => {
    // The app's plugins declare options every builder must have; this one uses only relay.
    const builder = new SchemaBuilder<{ Context: object }>({ plugins: [RelayPlugin], relay: {} } as never);
    const Thing = builder.objectRef<{ id: string }>('Thing').implement({
      fields: (t) => ({
        later: t.globalID({ resolve: async (thing) => ({ type: 'Thing', id: thing.id }) }),
        now: t.globalID({ resolve: (thing) => ({ type: 'Thing', id: thing.id }) }),
        mixed: t.globalIDList({ resolve: (thing) => [Promise.resolve({ type: 'Thing', id: thing.id }), { type: 'Thing', id: 'b' }] }),
        none: t.globalID({ nullable: true, resolve: () => null }),
      }),
    });
    builder.queryType({ fields: (t) => ({ thing: t.field({ type: Thing, resolve: () => ({ id: 'a' }) }) }) });
    const small = builder.toSchema();

    const sync = execute({ schema: small, document: parse('{ thing { now none } }'), contextValue: {} });
    expect(isPromise(sync)).toBe(false);
    expect((sync as ExecutionResult).data).toEqual({ thing: { now: encodeGlobalID('Thing', 'a'), none: null } });

    const async = execute({ schema: small, document: parse('{ thing { later mixed } }'), contextValue: {} });
    expect(isPromise(async)).toBe(true);
    expect((await async).data).toEqual({
      thing: { later: encodeGlobalID('Thing', 'a'), mixed: [encodeGlobalID('Thing', 'a'), encodeGlobalID('Thing', 'b')] },
    });
  });
});
