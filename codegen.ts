import type { CodegenConfig } from '@graphql-codegen/cli';

const scalars = { DateTime: 'string', JSON: 'unknown', EmailAddress: 'string', NonEmptyString: 'string' };

// Types GraphQL operations from the printed schema (schema.graphql). The
// output is generated, not committed: `npm run codegen` and `npm run
// typecheck` run this config, and scripts/generate.mjs runs it on install and
// before `npm test` when the output is missing or older than its inputs.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  // Only `graphql(`...`)` marks a document: the tests' `gql(...)` helpers take one.
  pluckConfig: { globalGqlIdentifierName: 'graphql' },
  // A folder without operations yet generates an untyped graphql() instead of failing.
  ignoreNoDocuments: true,
  generates: {
    // The example client's operations (examples/*.graphql): typed documents,
    // and persisted-documents.json, the manifest of trusted documents a server
    // loads with TRUSTED_DOCUMENTS (README, "Trusted documents"). Each document
    // carries its id (`__meta__.hash`, "sha256:" and the SHA-256 of the text the
    // manifest holds), which the client sends instead of the text.
    'examples/generated/': {
      documents: ['examples/**/*.graphql'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: { scalars, useTypeImports: true, enumsAsTypes: true, importExtension: '.ts' },
    },
    // The tests' operations: each `graphql(`...`)` call in test/ becomes a
    // typed document, so `gql(server, doc, variables)` returns typed data and
    // checks its variables. Only named operations are typed (the preset skips
    // anonymous ones), and names are unique across test/. A document that is
    // invalid on purpose stays a plain string. The manifest of these documents
    // (persisted-documents.json) is what test/trusted-documents.test.ts starts
    // a trusted-documents server with.
    'test/generated/': {
      documents: ['test/**/*.ts', '!test/generated/**'],
      preset: 'client',
      presetConfig: { fragmentMasking: false, persistedDocuments: { hashAlgorithm: 'sha256' } },
      config: { scalars, useTypeImports: true, enumsAsTypes: true, importExtension: '.ts' },
    },
  },
};

export default config;
