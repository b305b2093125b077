#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

// EPIPE (e.g. `understudy generate ... | head`) is not an error worth a stack.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});
process.exitCode = await main(process.argv.slice(2));
