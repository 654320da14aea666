/** A TCP port free on `host` (default 127.0.0.1) now. */
export function freePort(host?: string): Promise<number>;
