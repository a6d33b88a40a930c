import type { ServerResponse } from 'node:http';

/**
 * Headers every HTTP response carries: no MIME sniffing, no framing by other
 * sites, no referrer leaking URLs (signed file URLs among them). In
 * production, HSTS too: Parley is then expected behind TLS, and browsers
 * should never try it without. A route may replace any of them (file
 * downloads set their own CSP).
 */
export function securityHeaders(production: boolean): (res: ServerResponse) => void {
  const headers: [string, string][] = [
    ['x-content-type-options', 'nosniff'],
    ['x-frame-options', 'DENY'],
    ['referrer-policy', 'no-referrer'],
    ...(production ? ([['strict-transport-security', 'max-age=31536000; includeSubDomains']] as [string, string][]) : []),
  ];
  return (res) => {
    for (const [name, value] of headers) res.setHeader(name, value);
  };
}
