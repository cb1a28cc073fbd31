import type { Context } from 'koa';

/**
 * A request body as UTF-8 text, read once; undefined when it is larger than `limitBytes`
 * (declared or sent), which is found out without reading more than that.
 */
export async function readBodyText(ctx: Context, limitBytes: number): Promise<string | undefined> {
  if (Number(ctx.get('content-length') || 0) > limitBytes) return undefined;
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limitBytes) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
