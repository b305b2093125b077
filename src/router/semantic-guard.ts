// The semantic cache's guard. Embeddings place "What is 2+2?" and "What is
// 3+5?" side by side (0.995 with a small chat model as the embedder), so
// similarity alone cannot tell a paraphrase from a different question. A hit
// therefore also needs the two prompts to agree on the facts an embedding
// blurs: numbers (with their units and operators), quoted strings, code,
// names and negations. Each prompt's facts are reduced to a digest that joins
// the entry's sampling signature, and the index only returns entries whose
// signature is equal: a near-miss is never a candidate, whatever the embedder.
import { createHash } from 'node:crypto';

export interface PromptFacts {
  /** Numbers in order, with an operator chain or a unit that belongs to them: "3+5", "5 km". */
  numbers: string[];
  /** Quoted strings in order, whitespace collapsed. */
  quoted: string[];
  /** Code spans and fenced blocks in order, whitespace collapsed. */
  code: string[];
  /** Capitalised words that are not ordinary sentence openers, in order. */
  names: string[];
  /** Unit words (km, miles, °C, dollars...) in order, with or without a number. */
  units: string[];
  /** How many negations (not, no, never, n't, without...). */
  negations: number;
}

const NUMBER_WORDS = new Map<string, number>(Object.entries({
  zero: 0, one: 1, two: 2, three: 3, four: 4, five: 5, six: 6, seven: 7, eight: 8, nine: 9, ten: 10,
  eleven: 11, twelve: 12, thirteen: 13, fourteen: 14, fifteen: 15, sixteen: 16, seventeen: 17, eighteen: 18,
  nineteen: 19, twenty: 20, thirty: 30, forty: 40, fifty: 50, sixty: 60, seventy: 70, eighty: 80, ninety: 90,
  hundred: 100, thousand: 1000, million: 1e6, billion: 1e9, trillion: 1e12, dozen: 12, half: 0.5, once: 1, twice: 2,
  first: 1, second: 2, third: 3, fourth: 4, fifth: 5, sixth: 6, seventh: 7, eighth: 8, ninth: 9, tenth: 10,
}));

// Units and currencies, normalised to one spelling (plural and singular alike).
const UNITS = new Map<string, string>();
for (const [canonical, spellings] of Object.entries({
  mm: 'mm millimeter millimeters millimetre millimetres', cm: 'cm centimeter centimeters centimetre centimetres',
  m: 'm meter meters metre metres', km: 'km kilometer kilometers kilometre kilometres kms',
  in: 'inch inches', ft: 'ft foot feet', yd: 'yd yard yards', mi: 'mi mile miles', nmi: 'nmi nautical',
  mg: 'mg milligram milligrams', g: 'g gram grams', kg: 'kg kilogram kilograms kilo kilos', t: 'tonne tonnes ton tons',
  lb: 'lb lbs pound pounds', oz: 'oz ounce ounces', st: 'stone stones',
  ml: 'ml milliliter milliliters millilitre millilitres', l: 'l liter liters litre litres', gal: 'gal gallon gallons',
  c: '°c celsius centigrade', f: '°f fahrenheit', k: 'kelvin', deg: '° degree degrees', rad: 'rad radian radians',
  ms: 'ms millisecond milliseconds', s: 'sec secs second seconds', min: 'min mins minute minutes',
  h: 'h hr hrs hour hours', d: 'day days', wk: 'week weeks', mo: 'month months', yr: 'yr yrs year years',
  usd: '$ usd dollar dollars', eur: '€ eur euro euros', gbp: '£ gbp sterling', jpy: '¥ jpy yen', cent: 'cent cents',
  pct: '% percent per_cent percentage', b: 'byte bytes', bit: 'bit bits', kb: 'kb kib kilobyte kilobytes',
  mb: 'mb mib megabyte megabytes', gb: 'gb gib gigabyte gigabytes', tb: 'tb tib terabyte terabytes',
  hz: 'hz hertz', khz: 'khz', mhz: 'mhz', ghz: 'ghz', w: 'w watt watts', kw: 'kw kilowatt kilowatts', kwh: 'kwh',
  v: 'v volt volts', a: 'amp amps ampere amperes', mph: 'mph', kmh: 'kmh kph km/h', px: 'px pixel pixels',
  cal: 'cal calorie calories', kcal: 'kcal', j: 'j joule joules', n: 'newton newtons', pa: 'pa pascal pascals',
  acre: 'acre acres', ha: 'ha hectare hectares',
})) {
  for (const s of spellings.split(' ')) UNITS.set(s, canonical);
}
// One-letter unit spellings are only units right after a number ("5 m"); alone they are words ("a", "I").
const BARE_UNIT_MIN_LENGTH = 2;

// Words that open sentences or questions and are capitalised for that alone.
const OPENERS = new Set(`a an the what who whom whose which when where why how is are was were am be been do does did
  can could would should shall will may might must have has had i i'm i've i'd i'll please tell give write explain describe
  list name show find make help let it its this that these those there here in on at for from to of by with about as
  and or but if then so yes no not my your our their his her we you they he she me us them hi hello hey thanks thank
  compare summarize summarise translate define calculate compute convert create generate suggest recommend answer
  say said okay ok also now today yesterday tomorrow after before`.split(/\s+/));

const NEGATIONS = new Set(['not', 'no', 'never', 'none', 'nobody', 'nothing', 'nowhere', 'neither', 'nor', 'without',
  'cannot', 'except', 'excluding', 'unless', 'non', 'neg']);

const collapse = (s: string) => s.replace(/\s+/g, ' ').trim();

/** Replaces each match of `re` by what `take` returns, so later passes do not see it again. */
function extract(text: string, re: RegExp, take: (groups: (string | undefined)[]) => string | void): string {
  return text.replace(re, (...args: unknown[]) => {
    const kept = take(args.slice(0, -2) as (string | undefined)[]);
    return ` ${kept ?? ''} `;
  });
}

/** Canonical text of each number in `expr`: "1,000" and "1000" agree, "3.50" and "3.5" agree. */
function canonicalNumbers(expr: string): string {
  return expr.replace(/\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?/g, (n) => String(Number(n.replace(/,/g, ''))));
}

const NUMBER = String.raw`[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?`;
// A number, an operator chain joined to it ("3+5", "2 * 3.5"), and the word right after it (a unit or not).
const NUMBER_RE = new RegExp(String.raw`([$€£¥]?)(${NUMBER}(?:\s*[-+*/×÷^=<>x]\s*${NUMBER})*)(\s*)([%°]?[\p{L}/]*)`, 'gu');

/** The facts a semantic hit must share with the entry it finds. */
export function promptFacts(text: string): PromptFacts {
  const facts: PromptFacts = { numbers: [], quoted: [], code: [], names: [], units: [], negations: 0 };
  let rest = text.normalize('NFKC');
  // Code first: a fenced block or a `span` may hold quotes, numbers or capitals of its own.
  rest = extract(rest, /```[^\n]*\n?([\s\S]*?)(?:```|$)|`([^`\n]+)`/g, (g) => void facts.code.push(collapse(g[1] ?? g[2] ?? '')));
  // Quoted strings: double quotes of any style; single quotes only at word edges (not "don't").
  rest = extract(rest, /["“”«»„]([^"“”«»„\n]{1,500})["“”«»„]/g, (g) => void facts.quoted.push(collapse(g[1]!)));
  rest = extract(rest, /(?<![\p{L}\p{N}])['‘’]([^'‘’\n]{1,500}?)['‘’](?![\p{L}\p{N}])/gu, (g) => void facts.quoted.push(collapse(g[1]!)));
  // Number words become digits, so "three" and "3" agree and keep their place among the numbers.
  rest = rest.replace(/\p{L}+/gu, (w) => {
    const n = NUMBER_WORDS.get(w.toLowerCase());
    return n === undefined ? w : String(n);
  });
  rest = extract(rest, NUMBER_RE, (g) => {
    const expr = canonicalNumbers(g[2]!.replace(/\s+/g, ''));
    const after = g[4] ?? '';
    const unit = UNITS.get(after.toLowerCase());
    const currency = g[1] ? UNITS.get(g[1]) : undefined;
    facts.numbers.push([currency, expr, unit].filter(Boolean).join(' '));
    // A word after the number that is not a unit is text, left for the word pass.
    return unit ? '' : after;
  });
  // Capitals alone mark a name: a capitalised opener ("What", "Please") is not one, wherever it stands.
  for (const raw of rest.match(/[\p{L}\p{N}°%$€£¥'’/]+/gu) ?? []) {
    const word = raw.replace(/’/g, "'").replace(/^'+|'+$/g, '');
    const lower = word.toLowerCase();
    if (NEGATIONS.has(lower) || lower.endsWith("n't")) {
      facts.negations++;
      continue;
    }
    const unit = lower.length >= BARE_UNIT_MIN_LENGTH ? UNITS.get(lower) : undefined;
    if (unit) facts.units.push(unit);
    else if (/^\p{Lu}/u.test(word) && !OPENERS.has(lower.replace(/'.*$/, ''))) facts.names.push(lower);
  }
  return facts;
}

/** A short digest of a prompt's facts: equal for two prompts exactly when their facts are. */
export function factsDigest(text: string): string {
  return createHash('sha256').update(JSON.stringify(promptFacts(text))).digest('base64url').slice(0, 22);
}

/**
 * The signature a semantic hit must match: the sampling signature (task
 * settings, system prompt, model) and the digest of the prompt's facts.
 */
export function semanticSignature(paramsSignature: string, embeddedText: string): string {
  return `${paramsSignature}#${factsDigest(embeddedText)}`;
}
