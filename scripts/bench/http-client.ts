// The load generator's browser: node:http over keep-alive connections, a cookie jar (with
// paths) and manual redirects. It shares the machine with the server it measures, so it is kept
// lean: fetch (undici) costs about three times the CPU per request here.
import http from 'node:http';

export type Page = { status: number; location: string | undefined; body: string; url: URL };
type Init = { method?: string; headers?: Record<string, string>; body?: string };

const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });

/** One request; `cookies` sees the response's Set-Cookie lines. */
export function request(url: URL, init: Init = {}, cookies?: (lines: string[]) => void) {
  return new Promise<Page>((resolve, reject) => {
    const req = http.request(
      url,
      { method: init.method ?? 'GET', headers: init.headers ?? {}, agent },
      (res) => {
        if (cookies && res.headers['set-cookie']) cookies(res.headers['set-cookie']);
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, location: res.headers.location, body, url }),
        );
        res.on('error', reject);
      },
    );
    // A hung response fails the run rather than hanging it.
    req.setTimeout(30_000, () => req.destroy(new Error(`no answer in 30 s from ${url.href}`)));
    req.on('error', reject);
    req.end(init.body);
  });
}

const EXPIRED = /;\s*(max-age=0|expires=thu, 01 jan 1970)/i;
const PATH = /;\s*path=([^;]*)/i;

export class Browser {
  private readonly cookies = new Map<string, { value: string; path: string }>();

  private keep = (lines: string[]) => {
    for (const line of lines) {
      const end = line.indexOf(';');
      const pair = end === -1 ? line : line.slice(0, end);
      const eq = pair.indexOf('=');
      const value = pair.slice(eq + 1);
      const path = PATH.exec(line)?.[1] ?? '/';
      const key = `${pair.slice(0, eq)}|${path}`;
      if (!value || EXPIRED.test(line)) this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  };

  private cookieHeader(url: URL): string {
    let header = '';
    for (const [key, { value, path }] of this.cookies)
      if (url.pathname.startsWith(path))
        header += `${header ? '; ' : ''}${key.slice(0, key.indexOf('|'))}=${value}`;
    return header;
  }

  send(url: URL, init: Init = {}): Promise<Page> {
    const cookie = this.cookieHeader(url);
    const headers = cookie ? { ...init.headers, cookie } : init.headers;
    return request(url, { ...init, ...(headers && { headers }) }, this.keep);
  }

  post(url: URL, form: Record<string, string>): Promise<Page> {
    return this.send(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Follows redirects until one leaves `origin` (returned unfetched) or a page answers. */
  async follow(page: Page, origin: string): Promise<Page> {
    let current = page;
    for (let hops = 0; hops < 20 && current.status >= 300 && current.status < 400; hops++) {
      const next = new URL(current.location!, current.url);
      if (next.origin !== origin) return { ...current, url: next };
      current = await this.send(next);
    }
    return current;
  }
}
