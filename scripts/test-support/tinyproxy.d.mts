export interface Tinyproxy {
  /** http://[user:password@]127.0.0.1:port */
  url: string;
  port: number;
  /** Everything tinyproxy logged so far (a CONNECT line per tunnel). */
  log(): string;
  stop(): Promise<void>;
}
/** tinyproxy on a free port of 127.0.0.1; `auth` makes it demand basic credentials. */
export function startTinyproxy(dir: string, auth?: { user: string; password: string }): Promise<Tinyproxy>;
