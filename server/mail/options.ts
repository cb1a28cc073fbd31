import { join } from 'node:path';
import type { Config } from '../../config/load.ts';
import type { MailOptions } from './mailer.ts';

/** The mailer's settings from the configuration (the outbox lives in DATA_DIR/outbox). */
export function mailOptions(config: Config): MailOptions {
  return {
    transport: config.mail.transport,
    smtp: config.mail.smtp,
    from: config.mail.from,
    productName: config.productName,
    outboxDir: join(config.dataDir, 'outbox'),
  };
}
