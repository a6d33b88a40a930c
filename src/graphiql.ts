import type { GraphiQLOptions } from 'graphql-yoga';

/**
 * Runs in the browser between the GraphiQL bundle and its start. GraphiQL
 * sends the Headers tab with HTTP requests only; over the WebSocket it sends
 * `connection_init` with the configured connectionParams (none) and the
 * headers as `extensions` of each operation, while a Parley socket must carry
 * its token in `connection_init` (missing: closed with 4401). This passes the
 * tab's JSON (what was last typed, else what GraphiQL persisted) as the
 * connectionParams, which Parley reads an `Authorization` entry from. The
 * client connects lazily, so a changed token applies from the next socket.
 */
const HEADER_BRIDGE = `(() => {
  let typed = null;
  const persisted = () => { try { return localStorage.getItem('graphiql:headers'); } catch { return null; } };
  const headers = () => {
    try {
      const value = JSON.parse(typed ?? persisted() ?? '{}');
      return value && typeof value === 'object' && !Array.isArray(value) ? value : {};
    } catch { return {}; }
  };
  const render = YogaGraphiQL.renderYogaGraphiQL;
  YogaGraphiQL.renderYogaGraphiQL = (root, options) => render(root, {
    ...options,
    connectionParams: () => ({ ...(options.connectionParams || {}), ...headers() }),
    onEditHeaders: (value) => { typed = value; },
  });
})();`;

/** The call that starts GraphiQL, last in the package's page, after the inlined bundle. */
const START = 'YogaGraphiQL.renderYogaGraphiQL(';

let page: { key: string; body: Promise<Uint8Array<ArrayBuffer>> } | null = null;

/**
 * GraphiQL from @graphql-yoga/render-graphiql: one self-contained page with
 * the bundle, styles, favicon and Monaco's workers (as blob URLs) inlined, so
 * the browser asks this server for nothing else and no CDN is needed. The
 * package is about 9 MB of strings: it is loaded on the first GraphiQL request
 * only (never when GRAPHIQL=false), and the page is rendered and encoded once
 * per options rather than on every request.
 */
export function renderGraphiQL(options: GraphiQLOptions): Promise<Uint8Array<ArrayBuffer>> {
  const key = JSON.stringify(options);
  if (page?.key !== key) page = { key, body: render(options) };
  return page.body;
}

async function render(options: GraphiQLOptions): Promise<Uint8Array<ArrayBuffer>> {
  const { renderGraphiQL: renderPackaged } = await import('@graphql-yoga/render-graphiql');
  const html = renderPackaged(options);
  const start = html.lastIndexOf(START);
  if (start < 0)
    throw new Error(`@graphql-yoga/render-graphiql no longer starts GraphiQL with ${START}: the header bridge has nowhere to go`);
  // The bundle and the start share one script element; the bridge goes in a
  // script of its own between them (top-level bindings such as the workers
  // map stay global across script elements).
  const bridged = `${html.slice(0, start)}</script>\n<script id=parley-graphiql-headers>${HEADER_BRIDGE}</script>\n<script>${html.slice(start)}`;
  // encode() always returns a fresh ArrayBuffer (never a shared one), as BodyInit wants.
  return new TextEncoder().encode(bridged) as Uint8Array<ArrayBuffer>;
}
