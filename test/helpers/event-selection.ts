import {
  buildClientSchema,
  getIntrospectionQuery,
  getNamedType,
  isAbstractType,
  isInterfaceType,
  isLeafType,
  isNonNullType,
  isObjectType,
  type GraphQLField,
  type GraphQLNamedType,
  type GraphQLObjectType,
  type GraphQLSchema,
  type IntrospectionQuery,
} from 'graphql';
import type { GqlEndpoint } from './app.ts';
import { ok } from './fixtures.ts';

/** The schema the server runs, as a client learns it (introspection over HTTP). */
export async function introspect(s: GqlEndpoint, token: string): Promise<GraphQLSchema> {
  return buildClientSchema(ok(await s.gql<IntrospectionQuery>(getIntrospectionQuery(), {}, token)));
}

/**
 * Object levels below the root that select every field; deeper objects, and a
 * type met again on its own path (a message's parent, replies, its channel's
 * messages), select their scalar fields only. Connections, edges and page
 * info do not count as levels. Keeps a selection of everything within the
 * server's depth, token and cost limits.
 */
const FULL_LEVELS = 2;

const isWrapper = (type: GraphQLNamedType) => /(Connection|Edge)$/.test(type.name) || type.name === 'PageInfo';

/**
 * Every field of every type `rootType` may be (each possible type of an
 * interface as an inline fragment), down through the objects they reach: a
 * field added to an event or to what it reaches, and a new event type, are
 * selected without touching the test. A field with a required argument the
 * generator cannot invent is left out and named in `skipped`. Fields that
 * sibling fragments type differently are aliased `<field><Type>`.
 */
export function selectAll(schema: GraphQLSchema, rootType: string): { selection: string; skipped: string[] } {
  const skipped: string[] = [];

  const fieldSelection = (
    owner: GraphQLObjectType,
    field: GraphQLField<unknown, unknown>,
    level: number,
    path: string[],
    aliased: Set<string>,
  ): string | null => {
    // Connections answer their default page: `first` would multiply the cost the server counts.
    if (field.args.some((arg) => isNonNullType(arg.type) && arg.defaultValue === undefined)) {
      skipped.push(`${owner.name}.${field.name}`);
      return null;
    }
    const head = aliased.has(field.name) ? `${field.name}${owner.name}: ${field.name}` : field.name;
    const type = getNamedType(field.type);
    if (isLeafType(type)) return head;
    const wrapper = isWrapper(type);
    const nextLevel = wrapper ? level : level + 1;
    const leafOnly = !wrapper && (nextLevel > FULL_LEVELS || path.includes(type.name));
    const inner = selectionOf(type, nextLevel, wrapper ? path : [...path, type.name], leafOnly);
    return inner ? `${head} { ${inner} }` : null;
  };

  const objectFields = (type: GraphQLObjectType, level: number, path: string[], leafOnly: boolean, aliased = new Set<string>()): string[] =>
    Object.values(type.getFields())
      .filter((field) => !leafOnly || isLeafType(getNamedType(field.type)))
      .map((field) => fieldSelection(type, field, level, path, aliased))
      .filter((s): s is string => s !== null);

  /** Names that sibling fragments declare with different types, which GraphQL refuses under one response key. */
  const conflicting = (types: readonly GraphQLObjectType[]): Set<string> => {
    const typesByName = new Map<string, Set<string>>();
    for (const type of types) {
      for (const field of Object.values(type.getFields())) {
        if (!typesByName.has(field.name)) typesByName.set(field.name, new Set());
        typesByName.get(field.name)!.add(String(field.type));
      }
    }
    return new Set([...typesByName].filter(([, types]) => types.size > 1).map(([name]) => name));
  };

  const selectionOf = (type: GraphQLNamedType, level: number, path: string[], leafOnly: boolean): string => {
    if (isObjectType(type)) return objectFields(type, level, path, leafOnly).join(' ');
    if (isAbstractType(type)) {
      const shared = isInterfaceType(type)
        ? Object.values(type.getFields())
            .filter((f) => isLeafType(getNamedType(f.type)))
            .map((f) => f.name)
        : [];
      const possibleTypes = schema.getPossibleTypes(type);
      const aliased = conflicting(possibleTypes);
      const fragments = possibleTypes.map(
        (possible) =>
          `... on ${possible.name} { ${objectFields(possible, level, [...path, possible.name], leafOnly, aliased).join(' ') || '__typename'} }`,
      );
      return ['__typename', ...shared, ...fragments].join(' ');
    }
    return '';
  };

  const root = schema.getType(rootType);
  if (!root) throw new Error(`no type ${rootType} in the schema`);
  return { selection: selectionOf(root, 0, [rootType], false), skipped };
}

/** The names of the types an interface or union may resolve to. */
export function possibleTypeNames(schema: GraphQLSchema, name: string): string[] {
  const type = schema.getType(name);
  if (!type || !isAbstractType(type)) throw new Error(`${name} is not an interface or union`);
  return schema
    .getPossibleTypes(type)
    .map((t) => t.name)
    .sort();
}
