// The layers of src/ and the one direction imports may go (docs/architecture.md, "Layers").
// `npm run lint` runs this check; a violation fails the build. Type-only imports count too.
//
//   generated, config.ts, startup-error.ts     leaves: import nothing of ours above them
//   db/                                        connections, migrations, the embedded database, Tx
//   auth/                                      tokens and passwords
//   bus/                                       pub/sub, channel hub, live-stream primitive, event types
//   services/ (services/live/)                 domain rules and live features, GraphQL-free
//   schema/                                    Pothos types and fields, the resolver Context
//   ops/                                       readiness, metrics, the ops HTTP routes
//   transport/                                 HTTP and graphql-ws: sockets, frames, error masking
//   app.ts, server.ts, scripts/, the rest      composition
const LAYERS = [
  { name: 'leaf', path: '^src/(generated/|config\\.ts$|startup-error\\.ts$)' },
  { name: 'db', path: '^src/db/' },
  { name: 'auth', path: '^src/auth/' },
  { name: 'bus', path: '^src/bus/' },
  { name: 'services', path: '^src/services/' },
  { name: 'schema', path: '^src/schema/' },
  { name: 'ops', path: '^src/ops/' },
  { name: 'transport', path: '^src/transport/' },
];

/** Each layer may import only layers listed before it (and itself). */
const layerRules = LAYERS.map((layer, index) => ({
  name: `layer-${layer.name}`,
  comment: `${layer.name} sits below ${
    LAYERS.slice(index + 1)
      .map((l) => l.name)
      .join(', ') || 'nothing'
  } and the composition files: it must not import them`,
  severity: 'error',
  from: { path: layer.path },
  to: { path: '^src/', pathNot: LAYERS.slice(0, index + 1).map((l) => l.path) },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'No import cycle in src/, type-only imports included',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'src-not-to-tests',
      comment: 'The server never imports tests or benchmarks',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench)/' },
    },
    ...layerRules,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^src/generated/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.mjs'] },
  },
};
