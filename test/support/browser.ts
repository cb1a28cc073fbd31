/** A minimal browser for HTTP-level flows: a cookie jar (with paths) and manual redirects. */
export class Browser {
  private cookies = new Map<string, { value: string; path: string }>();
  private readonly userAgent: string | undefined;
  private readonly transport: typeof fetch;

  /** `transport` replaces fetch, e.g. to send headers fetch refuses to set (Host). */
  constructor({ userAgent, transport }: { userAgent?: string; transport?: typeof fetch } = {}) {
    this.userAgent = userAgent;
    this.transport = transport ?? fetch;
  }

  private store(res: Response) {
    for (const header of res.headers.getSetCookie()) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const [name, ...rest] = pair!.split('=');
      const value = rest.join('=');
      const path = attrs.find((a) => a.toLowerCase().startsWith('path='))?.slice(5) ?? '/';
      const expired =
        attrs.some((a) => /^expires=/i.test(a) && Date.parse(a.slice(8)) < Date.now()) ||
        attrs.some((a) => /^max-age=0$/i.test(a));
      const key = `${name}|${path}`;
      if (expired || value === '') this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  }

  private header(url: URL) {
    return [...this.cookies.entries()]
      .filter(([, c]) => url.pathname.startsWith(c.path))
      .map(([key, c]) => `${key.split('|')[0]}=${c.value}`)
      .join('; ');
  }

  async request(url: string | URL, init: RequestInit = {}): Promise<Response> {
    const target = new URL(url);
    const res = await this.transport(target, {
      ...init,
      redirect: 'manual',
      headers: {
        ...(init.headers as object),
        cookie: this.header(target),
        ...(this.userAgent && { 'user-agent': this.userAgent }),
      },
    });
    this.store(res);
    return res;
  }

  get(url: string | URL) {
    return this.request(url);
  }

  post(url: string | URL, form: Record<string, string>) {
    return this.request(url, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }

  /** Follows redirects from `res` until one leaves `origin` (returned unfetched) or a page answers. */
  async follow(res: Response, origin: string): Promise<{ res: Response; url: URL }> {
    let current = res;
    let url = new URL(res.url || origin);
    for (let hops = 0; hops < 20 && current.status >= 300 && current.status < 400; hops++) {
      url = new URL(current.headers.get('location')!, url);
      if (url.origin !== origin) return { res: current, url };
      current = await this.get(url);
    }
    return { res: current, url };
  }
}

export function hiddenInput(html: string, name: string): string {
  const match = new RegExp(`name="${name}" value="([^"]*)"`).exec(html);
  if (!match) throw new Error(`no hidden input ${name} in page`);
  return match[1]!;
}

export function formAction(html: string, contains: string): string {
  const match = new RegExp(`action="([^"]*${contains}[^"]*)"`).exec(html);
  if (!match) throw new Error(`no form posting to *${contains}*`);
  return match[1]!.replace(/&amp;/g, '&');
}
