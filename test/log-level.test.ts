// setLogLevel() and UNDERSTUDY_LOG_LEVEL take one of five names; any other value
// is INVALID_ARGUMENT with the usual message, whatever it is: the check never
// converts the value to a string (a BigInt, a null-prototype object, an array
// of length 2^32-1 or a Symbol used to throw uncoded errors or stall).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { setLogLevel } from '../src/index.js';
import { run, thrown } from './helpers.js';

const expected = 'Expected one of debug, info, warn, error, none for level but received';

test('setLogLevel refuses every other value with INVALID_ARGUMENT and a short description', () => {
  const huge: unknown[] = [];
  huge.length = 2 ** 32 - 1;
  const cases: Array<[unknown, string]> = [
    [1n, '1n of type bigint'],
    [Object.create(null), 'an object of type object'],
    [huge, 'an array of type object'],
    [Symbol('x'), 'Symbol(x) of type symbol'],
    ['toString', '"toString" of type string'],
    ['loud', '"loud" of type string'],
    [3, '3 of type number'],
    [undefined, 'undefined of type undefined'],
  ];
  for (const [value, shown] of cases) {
    const err = thrown(() => setLogLevel(value as never));
    assert.is(err.code, 'INVALID_ARGUMENT', shown);
    assert.is(err.message, `${expected} ${shown}`);
  }
  setLogLevel('none');
});

test('an unknown UNDERSTUDY_LOG_LEVEL is INVALID_ARGUMENT when the addon loads', async () => {
  const script = `import('./src/llama/binding.ts').then(({ binding }) => { try { binding(); console.log('loaded'); } ` +
    `catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); } });`;
  const r = await runWithEnv(script, 'toString');
  assert.equal(JSON.parse(r), {
    code: 'INVALID_ARGUMENT',
    message: 'Expected one of debug, info, warn, error, none for UNDERSTUDY_LOG_LEVEL but received "toString" of type string',
  });
});

async function runWithEnv(script: string, level: string): Promise<string> {
  const before = process.env.UNDERSTUDY_LOG_LEVEL;
  process.env.UNDERSTUDY_LOG_LEVEL = level;
  try {
    const r = await run(process.execPath, ['--import', 'tsx', '-e', script], 60_000);
    return r.stdout.trim();
  } finally {
    if (before === undefined) delete process.env.UNDERSTUDY_LOG_LEVEL;
    else process.env.UNDERSTUDY_LOG_LEVEL = before;
  }
}

test.run();
