import { simpleParser, type ParsedMail } from 'mailparser';
import { SMTPServer, type SMTPServerDataStream } from 'smtp-server';

export type TestSmtpServer = {
  port: number;
  /** Every accepted message, parsed, in order of arrival. */
  messages: ParsedMail[];
  /** Refuses the next `count` messages after DATA with `code` (4xx: try again, 5xx: give up). */
  refuseNext(count: number, code?: number): void;
  /** How many messages have been refused so far. */
  readonly refused: number;
  waitForMessage(predicate: (mail: ParsedMail) => boolean, timeoutMs?: number): Promise<ParsedMail>;
  /** Listens again on the same port after stop(); does nothing while listening. */
  start(): Promise<void>;
  /** Stops listening and drops open (pooled) connections: clients now get ECONNREFUSED. */
  stop(): Promise<void>;
};

export type SmtpServerOptions = { auth?: { user: string; password: string } };

// Open client connections are dropped after this instead of smtp-server's 30 s grace.
const CLOSE_TIMEOUT_MS = 50;

function smtpError(message: string, responseCode: number): Error {
  return Object.assign(new Error(message), { responseCode });
}

/** A real SMTP server on a free loopback port, plain text (no STARTTLS), optionally with AUTH. */
export async function startSmtpServer(options: SmtpServerOptions = {}): Promise<TestSmtpServer> {
  const messages: ParsedMail[] = [];
  let refusals = { count: 0, code: 451 };
  let refused = 0;
  let server: SMTPServer | undefined;
  let port = 0;

  async function onData(stream: SMTPServerDataStream, done: (err?: Error | null) => void) {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    if (refusals.count > 0) {
      refusals.count--;
      refused++;
      return done(smtpError('Delivery refused by the test server', refusals.code));
    }
    messages.push(await simpleParser(Buffer.concat(chunks)));
    done();
  }

  function listen(): Promise<void> {
    const { auth } = options;
    server = new SMTPServer({
      logger: false,
      disableReverseLookup: true,
      closeTimeout: CLOSE_TIMEOUT_MS,
      disabledCommands: auth ? ['STARTTLS'] : ['STARTTLS', 'AUTH'],
      authOptional: !auth,
      authMethods: ['PLAIN', 'LOGIN'],
      allowInsecureAuth: true,
      onAuth(credentials, _session, callback) {
        if (credentials.username === auth?.user && credentials.password === auth?.password)
          return callback(null, { user: credentials.username });
        callback(smtpError('Invalid username or password', 535));
      },
      onData(stream, _session, callback) {
        onData(stream, callback).catch(callback);
      },
    });
    const current = server;
    return new Promise((resolve, reject) => {
      current.once('error', reject);
      current.listen(port, '127.0.0.1', () => {
        port = (current.server.address() as { port: number }).port;
        current.off('error', reject);
        // A client hanging up mid-session is reported as an 'error'; unheard, it would throw.
        current.on('error', () => {});
        resolve();
      });
    });
  }

  await listen();
  return {
    get port() {
      return port;
    },
    messages,
    get refused() {
      return refused;
    },
    refuseNext(count, code = 451) {
      refusals = { count, code };
    },
    async waitForMessage(predicate, timeoutMs = 5000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const found = messages.find(predicate);
        if (found) return found;
        if (Date.now() > deadline) throw new Error(`no matching message in ${timeoutMs} ms`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    start: () => (server ? Promise.resolve() : listen()),
    stop() {
      const current = server;
      server = undefined;
      return new Promise((resolve) => (current ? current.close(() => resolve()) : resolve()));
    },
  };
}
