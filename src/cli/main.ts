// The `understudy` command: dispatch, and the one place that turns errors into
// exit codes. An error prints `understudy: error [CODE]: message` and exits 1; a
// usage error prints the problem and a hint and exits 2.
import { UnderstudyError } from '../errors.js';
import { makeRedactor } from '../router/redact.js';
import { askCommand, datasetCommand } from './ask.js';
import { chatCommand } from './chat.js';
import { embedCommand } from './embed.js';
import { generateCommand } from './generate.js';
import { doctorCommand, infoCommand, tokenizeCommand } from './inspect.js';
import { serveCommand } from './serve.js';
import { trainCommand } from './train.js';
import { adaptersCommand } from './adapters.js';
import { modelsCommand } from './models-command.js';
import { pullCommand } from './pull.js';
import { HELP, UsageError } from './usage.js';
import { showValue } from '../validate.js';

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  generate: generateCommand,
  chat: chatCommand,
  embed: embedCommand,
  tokenize: tokenizeCommand,
  info: infoCommand,
  doctor: doctorCommand,
  ask: askCommand,
  dataset: datasetCommand,
  train: trainCommand,
  adapters: adaptersCommand,
  serve: serveCommand,
  pull: pullCommand,
  models: modelsCommand,
};

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(HELP);
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  try {
    if (!command) throw new UsageError(`unknown command ${showValue(name)}`);
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(HELP);
      return 0;
    }
    return await command(rest);
  } catch (err) {
    // Whatever an error says, the keys in the environment are not repeated on stderr.
    // Nor the server's key, from the environment or the command line.
    const keys = [process.env.UNDERSTUDY_API_KEY, process.env.OPENAI_API_KEY, process.env.UNDERSTUDY_SERVER_KEY, process.env.HF_TOKEN, ...flagValues(rest, '--api-key')];
    const redact = makeRedactor(keys.map((k) => k?.trim()).filter((k) => k && k.length >= 4));
    if (err instanceof UsageError) {
      process.stderr.write(redact(`understudy: ${err.message}\nRun \`understudy --help\` for usage.\n`));
      return 2;
    }
    if (err instanceof UnderstudyError) {
      process.stderr.write(redact(`understudy: error [${err.code}]: ${err.message}\n`));
      return 1;
    }
    const message = err instanceof Error ? err.message : showValue(err);
    process.stderr.write(redact(`understudy: error [INTERNAL]: ${message}\n`));
    return 1;
  }
}

/** Every value given to `flag` (`--flag VALUE` or `--flag=VALUE`). */
function flagValues(args: string[], flag: string): string[] {
  const out: string[] = [];
  args.forEach((arg, i) => {
    if (arg === flag && i + 1 < args.length) out.push(args[i + 1]!);
    else if (arg.startsWith(`${flag}=`)) out.push(arg.slice(flag.length + 1));
  });
  return out;
}
