import { readFileSync } from 'node:fs';
import { buildSchema, parse, validate } from 'graphql';
import { describe, expect, it } from 'vitest';
import { printedSchema, SCHEMA_FILE } from '../src/scripts/print-schema.ts';

describe('schema.graphql', () => {
  it('is the current printed schema (run `npm run schema:print` after schema changes)', () => {
    expect(readFileSync(SCHEMA_FILE, 'utf8')).toBe(printedSchema());
  });

  it('accepts the example client operations that codegen types', () => {
    const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
    const document = parse(readFileSync(new URL('../examples/operations.graphql', import.meta.url), 'utf8'));
    expect(validate(schema, document).map((e) => e.message)).toEqual([]);
  });

  it('accepts the GraphQL documents of docs/protocol.md, the guide client authors copy from', () => {
    const schema = buildSchema(readFileSync(SCHEMA_FILE, 'utf8'));
    const guide = readFileSync(new URL('../docs/protocol.md', import.meta.url), 'utf8');
    const blocks = [...guide.matchAll(/```graphql\n([\s\S]*?)```/g)].map((m) => m[1]!);
    expect(blocks.length).toBeGreaterThan(0);
    for (const block of blocks) expect(validate(schema, parse(block)).map((e) => e.message)).toEqual([]);
  });
});

describe('root fields', () => {
  it('need a signed-in viewer (integration operations: an API key) by default; only signing in, registering and refreshing a session opt out', async () => {
    const { schema } = await import('../src/schema/index.ts');
    const open: string[] = [];
    for (const type of [schema.getQueryType()!, schema.getMutationType()!, schema.getSubscriptionType()!]) {
      expect((type.extensions as { pothosOptions?: { authScopes?: unknown } }).pothosOptions?.authScopes, type.name).toEqual({
        authenticated: true,
      });
      for (const [name, field] of Object.entries(type.getFields())) {
        const options = (field.extensions as { pothosOptions?: { skipTypeScopes?: boolean; authScopes?: unknown } }).pothosOptions;
        // Integration operations trade the user scope for their own: an organization API key.
        if (options?.skipTypeScopes && JSON.stringify(options.authScopes) !== '{"integration":true}') open.push(`${type.name}.${name}`);
      }
    }
    expect(open.sort()).toEqual(['Mutation.login', 'Mutation.refreshSession', 'Mutation.registerOrganization']);
  });
});
