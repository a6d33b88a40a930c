import { completeValue, RootFieldBuilder, type SchemaTypes } from '@pothos/core';
import { encodeGlobalID } from '@pothos/plugin-relay';

/**
 * `t.globalID` and `t.globalIDList` (and so every node's `id`) as
 * @pothos/plugin-relay 4.8 defines them, minus its `async` wrapper. That
 * wrapper turned every id into a promise, so no selection with an id could
 * run synchronously: graphql-js then tracks a promise per object, and a live
 * event's shared execution (realtime/shared-execution.ts) finished a few
 * microtasks later instead of in the call that received the event. Here the
 * resolver's value is encoded as it comes, and a promise is awaited only when
 * the resolver returned one. Installed before any field is built (builder.ts).
 */
type Ref = { type: string; id: unknown } | string | null | undefined;
type Resolver = (parent: unknown, args: unknown, context: unknown, info: unknown) => unknown;
type FieldBuilder = RootFieldBuilder<SchemaTypes, unknown> & {
  builder: {
    configStore: { getTypeConfig(ref: unknown): { name: string } };
    options: { relay?: { encodeGlobalID?: (typename: string, id: string, ctx: unknown) => string } };
  };
  field(options: Record<string, unknown>): unknown;
};

function encoder(fields: FieldBuilder, context: unknown) {
  const encode = fields.builder.options.relay?.encodeGlobalID ?? ((typename: string, id: string) => encodeGlobalID(typename, id));
  return (ref: Ref) =>
    ref == null || typeof ref !== 'object' ? ref : encode(fields.builder.configStore.getTypeConfig(ref.type).name, String(ref.id), context);
}

const isThenable = (value: unknown): value is PromiseLike<unknown> => typeof (value as PromiseLike<unknown> | null)?.then === 'function';

const proto = RootFieldBuilder.prototype as unknown as Record<
  'globalID' | 'globalIDList',
  (this: FieldBuilder, options: { resolve: Resolver }) => unknown
>;

proto.globalID = function globalID({ resolve, ...options }) {
  return this.field({
    ...options,
    type: 'ID',
    resolve: (parent: unknown, args: unknown, context: unknown, info: unknown) =>
      completeValue(resolve(parent, args, context, info) as Ref | Promise<Ref>, encoder(this, context)),
  });
};

proto.globalIDList = function globalIDList({ resolve, ...options }) {
  return this.field({
    ...options,
    type: ['ID'],
    resolve: (parent: unknown, args: unknown, context: unknown, info: unknown) =>
      completeValue(resolve(parent, args, context, info) as Ref[] | Promise<Ref[]>, (list) => {
        if (!list) return list;
        if (!Array.isArray(list)) throw new TypeError('globalIDList resolved to something that is not a list');
        const encode = encoder(this, context);
        return list.some(isThenable) ? Promise.all(list).then((items) => items.map(encode)) : list.map(encode);
      }),
  });
};
