import { renderGraphiQL as renderYogaGraphiQL, type GraphiQLOptions } from 'graphql-yoga';

/**
 * Runs in the browser between Yoga's GraphiQL bundle and its start. GraphiQL
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

/** Yoga's GraphiQL page with the header bridge above its start script. */
export function renderGraphiQL(options: GraphiQLOptions): string {
  const html = renderYogaGraphiQL(options);
  const start = html.lastIndexOf('<script>');
  return `${html.slice(0, start)}<script id=parley-graphiql-headers>${HEADER_BRIDGE}</script>${html.slice(start)}`;
}
