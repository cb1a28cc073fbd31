// The server reads templates and static files from views/ beside server/; copy them into dist/.
import { cpSync, chmodSync } from 'node:fs';

cpSync('views', 'dist/views', { recursive: true });
chmodSync('dist/server/cli/main.js', 0o755);
