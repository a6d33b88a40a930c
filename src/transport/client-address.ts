import type { IncomingMessage } from 'node:http';
import proxyAddr from 'proxy-addr';
import { StartupError } from '../startup-error.ts';

import type { ClientInfo } from '../services/viewer.ts';

/**
 * The client's address, from TRUST_PROXY: empty (the default) trusts no proxy,
 * so `X-Forwarded-For` is ignored and the address is the TCP peer's. Otherwise
 * a hop count (`1`: one proxy in front, whatever its address) or a
 * comma-separated list of addresses, CIDR ranges and the names `loopback`,
 * `linklocal` and `uniquelocal`: `X-Forwarded-For` is walked from the right
 * while the hop is trusted, as Express's `trust proxy` does (proxy-addr).
 */
export function clientAddressResolver(trustProxy: string): (req: IncomingMessage) => ClientInfo {
  const trust = compileTrust(trustProxy.trim());
  return (req) => {
    const header = req.headers['user-agent'];
    const userAgent = header ? header.slice(0, 256) : null;
    if (!trust) return { ip: normalize(req.socket.remoteAddress ?? 'unknown'), userAgent };
    return { ip: normalize(proxyAddr(req, trust)), userAgent };
  };
}

function compileTrust(setting: string): ((addr: string, i: number) => boolean) | null {
  if (setting === '' || setting === 'false') return null;
  if (/^\d+$/.test(setting)) {
    const hops = Number(setting);
    return hops === 0 ? null : (_addr, i) => i < hops;
  }
  try {
    return proxyAddr.compile(setting.split(',').map((part) => part.trim()));
  } catch (error) {
    throw new StartupError(`TRUST_PROXY: ${(error as Error).message}`);
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is 10.0.0.1. */
function normalize(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
