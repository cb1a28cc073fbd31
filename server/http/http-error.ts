/** An error our routes throw for the user to see: its status and message (koa's `expose`). */
export class HttpError extends Error {
  readonly status: number;
  readonly expose = true;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}
