// Odd values for every argument slot: wrong types, NaN, infinities, -0, huge
// numbers, huge strings, arrays with a huge length and holes, objects whose
// getters throw, Proxies, symbols, BigInts, null prototypes. Built fresh for
// each case (some are consumed or mutated by a call), by index, so a case is
// reproducible from its number.
import { HostileError } from './worker-kit.js';

const throwing = () => { throw new HostileError(); };
const trap = new Proxy({}, { get: throwing }) as ProxyHandler<object>;

/** [label, make] pairs; make() returns a fresh value. */
export const HOSTILE: [string, () => unknown][] = [
  ['undefined', () => undefined],
  ['null', () => null],
  ['true', () => true],
  ['0', () => 0],
  ['-0', () => -0],
  ['-1', () => -1],
  ['1.5', () => 1.5],
  ['NaN', () => Number.NaN],
  ['Infinity', () => Number.POSITIVE_INFINITY],
  ['-Infinity', () => Number.NEGATIVE_INFINITY],
  ['2^31', () => 2 ** 31],
  ['2^53+2', () => 2 ** 53 + 2],
  ['-2^63', () => -(2 ** 63)],
  ['1e308', () => 1e308],
  ['5e-324', () => Number.MIN_VALUE],
  ['empty string', () => ''],
  ['NUL string', () => '\u0000'],
  ['lone surrogate', () => '\ud800x\udfff'],
  ['1 MB string', () => 'Once upon a time, '.repeat(60_000)],
  ['emoji string', () => '🦙'.repeat(5000)],
  ['symbol', () => Symbol('hostile')],
  ['bigint', () => 10n],
  ['huge bigint', () => 2n ** 70n],
  ['empty array', () => []],
  ['array with holes', () => [, 1, , 'x', ,]], // eslint-disable-line no-sparse-arrays
  ['array of length 2^32-1', () => new Array(2 ** 32 - 1)],
  ['array of length 1e6 with 2 items', () => Object.assign(new Array(1_000_000), { 0: 1, 999_999: 2 })],
  ['array with a throwing getter', () => Object.defineProperty([1, 2, 3], 1, { get: throwing })],
  ['empty object', () => ({})],
  ['null-prototype object', () => Object.create(null)],
  ['object with throwing getters', () => new Proxy({}, { get: throwing, has: throwing, ownKeys: throwing, getOwnPropertyDescriptor: throwing })],
  ['proxy that throws on everything', () => new Proxy({}, trap)],
  ['array proxy that throws', () => new Proxy([1, 2], { get: throwing })],
  ['valueOf and toString that throw', () => ({ valueOf: throwing, toString: throwing, [Symbol.toPrimitive]: throwing })],
  ['function', () => () => 1],
  ['date', () => new Date(Number.NaN)],
  ['regexp', () => /x/g],
  ['map', () => new Map([[1, 2]])],
  ['promise', () => Promise.resolve(1)],
  ['Int32Array with -1 and 2^31-1', () => new Int32Array([1, -1, 2 ** 31 - 1])],
  ['Float64Array with NaN', () => new Float64Array([Number.NaN, 1.5])],
  ['Uint8Array of 1 MB', () => new Uint8Array(1 << 20)],
  ['aborted signal', () => AbortSignal.abort()],
  ['messages of length 2^32-1', () => Object.assign(new Array(2 ** 32 - 1), { 0: { role: 'user', content: 'hi' } })],
  ['message with object content', () => [{ role: 'user', content: { toString: throwing } }]],
  ['message with a 1 MB role', () => [{ role: 'r'.repeat(1 << 20), content: 'hi' }]],
];

/**
 * The values tried in each option of an options object (every value is tried in
 * each positional argument): one of each kind, to keep the suite short.
 */
export const OPTION_VALUES = new Set([
  'undefined', 'null', '-0', 'NaN', 'Infinity', '-Infinity', '2^53+2', '1e308', 'empty string', 'lone surrogate',
  '1 MB string', 'symbol', 'bigint', 'array with holes', 'array of length 2^32-1', 'null-prototype object',
  'object with throwing getters', 'valueOf and toString that throw', 'function', 'aborted signal',
]);
