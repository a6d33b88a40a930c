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
});
