import type { CodegenConfig } from '@graphql-codegen/cli';

// Types the example client's operations from the printed schema. Run with
// `npm run codegen`; the output is generated, not committed.
const config: CodegenConfig = {
  schema: 'schema.graphql',
  documents: ['examples/**/*.graphql'],
  generates: {
    'examples/generated/graphql.ts': {
      plugins: ['typescript-operations', 'typed-document-node'],
      config: {
        scalars: { DateTime: 'string', JSON: 'unknown', EmailAddress: 'string', NonEmptyString: 'string' },
        useTypeImports: true,
        enumsAsTypes: true,
      },
    },
  },
};

export default config;
