// Redis connections for the distributed explorer (src/engine/distributed.ts):
// URL parsing (redis://, rediss:// for TLS, with a user and password),
// redaction of credentials in anything printed or stored, and a link that
// notices within seconds when Redis is unreachable or lost, so that neither
// the coordinator nor a worker ever hangs on a dead server.
import { isIP } from 'node:net';
import { Redis, type RedisOptions } from 'ioredis';
import { ParseError } from './model.ts';

/** Redis unreachable or lost, or a distributed run that cannot go on: a resource failure (exit 3). */
export class DistributedError extends Error {
  override name = 'DistributedError';
}

export interface RedisTarget {
  /** Connection options for ioredis and BullMQ (credentials included: never print these). */
  options: RedisOptions;
  /** The URL with its credentials replaced by ***: the only form ever printed or stored. */
  display: string;
}

/** Replace the credentials of every redis:// or rediss:// URL in `text` by ***. */
export function redactUrls(text: string): string {
  return text.replace(/\b(rediss?:\/\/)[^@\s/]*@/gi, '$1***@');
}

/** A URL as shown to users: credentials replaced (or the text itself, redacted, when it does not parse). */
export function redactUrl(url: string): string {
  return redactUrls(url);
}

/** Parse --redis URL: redis://[user[:password]@]host[:port][/db] or rediss://... (TLS). Bad input: ParseError. */
export function parseRedisUrl(url: string): RedisTarget {
  let u: URL;
  const display = redactUrl(url);
  try {
    u = new URL(url);
  } catch {
    throw new ParseError(`--redis: "${display}" is not a URL; expected redis://[user:password@]host[:port][/db] or rediss://... for TLS`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:')
    throw new ParseError(`--redis: "${display}" must start with redis:// or rediss:// (TLS)`);
  if (u.hostname === '') throw new ParseError(`--redis: "${display}" names no host`);
  const port = u.port === '' ? 6379 : Number(u.port);
  const dbText = u.pathname.replace(/^\//, '');
  if (dbText !== '' && !/^\d+$/.test(dbText)) throw new ParseError(`--redis: "${display}": the path must be a database number`);
  const host = u.hostname.replace(/^\[|\]$/g, '');
  const options: RedisOptions = {
    host,
    port,
    ...(u.username !== '' ? { username: decodeURIComponent(u.username) } : {}),
    ...(u.password !== '' ? { password: decodeURIComponent(u.password) } : {}),
    ...(dbText !== '' ? { db: Number(dbText) } : {}),
    // rediss://: TLS, verified against the system CAs (and NODE_EXTRA_CA_CERTS).
    ...(u.protocol === 'rediss:' ? { tls: isIP(host) ? {} : { servername: host } } : {}),
    connectTimeout: 3000,
    // Give up reconnecting after about 4 s: the link's watchdog reports the loss.
    retryStrategy: (times: number) => (times > 8 ? null : 500),
    // BullMQ's blocking connections require it; requests wait for a reconnection, bounded by the watchdog.
    maxRetriesPerRequest: null,
  };
  return { options, display: `${u.protocol}//${u.username !== '' || u.password !== '' ? '***@' : ''}${u.host}${u.pathname === '/' ? '' : u.pathname}` };
}

/** How long Redis may not answer before the link is declared lost. */
export const LOST_MS = 5000;

/**
 * A control connection that pings Redis every second. `fatal` rejects (with
 * a DistributedError naming the redacted URL) when Redis cannot be reached
 * at start, or has not answered for LOST_MS; race every wait against it.
 */
export class RedisLink {
  readonly redis: Redis;
  readonly fatal: Promise<never>;
  private fail!: (e: DistributedError) => void;
  private timer: NodeJS.Timeout | undefined;
  private lastOk = Date.now();
  private lastError = '';
  failed: DistributedError | undefined;

  private constructor(readonly target: RedisTarget) {
    this.fatal = new Promise<never>((_, reject) => {
      this.fail = (e) => {
        if (this.failed) return;
        this.failed = e;
        reject(e);
      };
    });
    this.fatal.catch(() => {});
    this.redis = new Redis({ ...target.options, lazyConnect: true });
    this.redis.on('error', (e: Error) => (this.lastError = redactUrls(e.message)));
  }

  /** Connect and check that Redis answers (DistributedError within about LOST_MS otherwise). */
  static async open(target: RedisTarget): Promise<RedisLink> {
    const link = new RedisLink(target);
    const deadline = new Promise<never>((_, reject) =>
      setTimeout(() => reject(new DistributedError(`cannot reach Redis at ${target.display}${link.lastError ? `: ${link.lastError}` : ''}`)), LOST_MS).unref(),
    );
    try {
      await Promise.race([link.redis.connect().then(() => link.redis.ping()), deadline]);
    } catch (e) {
      link.redis.disconnect();
      if (e instanceof DistributedError) throw e;
      // The connection's own error (a refused certificate, a wrong password) says more than "Connection is closed".
      throw new DistributedError(`cannot reach Redis at ${target.display}: ${link.lastError || redactUrls((e as Error).message)}`);
    }
    link.lastOk = Date.now();
    link.timer = setInterval(() => link.check(), 1000);
    link.timer.unref();
    return link;
  }

  private check(): void {
    if (Date.now() - this.lastOk > LOST_MS) {
      this.fail(new DistributedError(`lost the connection to Redis at ${this.target.display}${this.lastError ? `: ${this.lastError}` : ''}`));
      return;
    }
    const sent = Date.now();
    this.redis.ping().then(
      () => (this.lastOk = Math.max(this.lastOk, sent)),
      (e: Error) => (this.lastError = redactUrls(e.message)),
    );
  }

  /** `p`, unless the link fails first. */
  guard<T>(p: Promise<T>): Promise<T> {
    return Promise.race([p, this.fatal]);
  }

  /** Declare the link lost (another connection saw a fatal error). */
  abort(message: string): void {
    this.fail(new DistributedError(`${redactUrls(message)} (Redis at ${this.target.display})`));
  }

  close(): void {
    if (this.timer) clearInterval(this.timer);
    this.redis.disconnect();
  }
}
