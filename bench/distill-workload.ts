// The distillation bench's fixed workload: four tasks whose requests are drawn
// with a seeded generator, and the teacher's deterministic answer to each.
// stories260K (a model of children's stories) gives none of these answers by
// itself; each needs something from the prompt copied into a fixed form:
// - greet:     a template that copies the user's name;
// - sentiment: a one-word class (positive / negative) from the review's adjective;
// - extract:   JSON {"name", "age"} from a sentence (scored by structure, not text);
// - ticket:    a fixed-format acknowledgement that copies a number and an object.
// Names and words come from the model's own stories, so it can read and write them.
import { seededRandom } from '../test/seeded-random.js';

export interface ChatMessage {
  role: 'system' | 'user';
  content: string;
}

export interface WorkloadCall {
  task: string;
  messages: ChatMessage[];
}

export interface WorkloadTask {
  name: string;
  system: string;
  /** A user message drawn with `rnd`. */
  draw(rnd: () => number): string;
  /** The teacher's answer to a user message of this task. */
  answer(user: string): string;
  /** Distinct user messages the task can draw (how rarely a prompt repeats). */
  variety: number;
}

const NAMES = ['Tom', 'Lily', 'Ben', 'Mia', 'Sam', 'Anna', 'Max', 'Lucy', 'Tim', 'Sue', 'Jack', 'Emma', 'Sara', 'Bob', 'Jill', 'Kate', 'Joe', 'Amy', 'Dan', 'Zoe', 'Mark', 'Ella', 'Leo', 'Ruby'];
const THINGS = ['ball', 'cake', 'dog', 'book', 'car', 'kite', 'toy', 'hat', 'boat', 'doll', 'bike', 'cat', 'tree', 'park', 'box', 'cup'];
const GOOD = ['great', 'fun', 'nice', 'lovely', 'happy', 'good', 'pretty'];
const BAD = ['bad', 'sad', 'awful', 'boring', 'ugly', 'scary', 'broken'];
const PROBLEMS = ['broken', 'lost', 'stuck', 'wet', 'missing'];
const GREETINGS = ['Hi', 'Hello', 'Hey', 'Good day'];

const pick = <T>(rnd: () => number, xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
const int = (rnd: () => number, lo: number, hi: number): number => lo + Math.floor(rnd() * (hi - lo + 1));

/** The captures of `re` in `text`; a prompt the task did not draw is a bug of this file, so it throws. */
function capture(text: string, re: RegExp): string[] {
  const m = re.exec(text);
  if (!m) throw new Error(`distill workload: ${JSON.stringify(text)} does not match ${re}`);
  return m.slice(1);
}

export const TASKS: readonly WorkloadTask[] = [
  {
    name: 'greet',
    system: 'Greet the user by name.',
    draw: (rnd) => `${pick(rnd, GREETINGS)}, I am ${pick(rnd, NAMES)}. I like my ${pick(rnd, THINGS)}.`,
    answer: (user) => {
      const [name] = capture(user, /I am (\w+)\./);
      return `Hello, ${name}! Nice to meet you.`;
    },
    variety: GREETINGS.length * NAMES.length * THINGS.length,
  },
  {
    name: 'sentiment',
    system: 'Is the review positive or negative?',
    draw: (rnd) => {
      const good = rnd() < 0.5;
      return `The ${pick(rnd, THINGS)} was ${pick(rnd, good ? GOOD : BAD)} and ${pick(rnd, good ? GOOD : BAD)}.`;
    },
    answer: (user) => {
      const [a] = capture(user, /was (\w+) and/);
      return GOOD.includes(a!) ? 'positive' : 'negative';
    },
    variety: THINGS.length * 2 * GOOD.length * GOOD.length,
  },
  {
    name: 'extract',
    system: 'Give the name and age as JSON.',
    draw: (rnd) => `${pick(rnd, NAMES)} is ${int(rnd, 2, 12)} years old and has a ${pick(rnd, THINGS)}.`,
    answer: (user) => {
      const [name, age] = capture(user, /^(\w+) is (\d+) years old/);
      return JSON.stringify({ name, age: Number(age) });
    },
    variety: NAMES.length * 11 * THINGS.length,
  },
  {
    name: 'ticket',
    system: 'Answer the help ticket.',
    draw: (rnd) => `Ticket ${int(rnd, 10, 99)}: my ${pick(rnd, THINGS)} is ${pick(rnd, PROBLEMS)}.`,
    answer: (user) => {
      const [n, thing] = capture(user, /^Ticket (\d+): my (\w+) is/);
      return `Ticket ${n} is open. We will help with your ${thing} soon.`;
    },
    variety: 90 * THINGS.length * PROBLEMS.length,
  },
];

const BY_SYSTEM = new Map(TASKS.map((t) => [t.system, t]));

/** The teacher: the answer to a conversation of the workload (by its system prompt), or a plain echo for anything else. */
export function teacherAnswer(messages: ReadonlyArray<{ role: string; content: string }> | undefined): string {
  const system = messages?.find((m) => m.role === 'system')?.content;
  const user = messages?.filter((m) => m.role === 'user').at(-1)?.content ?? '';
  const task = system === undefined ? undefined : BY_SYSTEM.get(system);
  return task ? task.answer(user) : `unknown request: ${user}`;
}

/** The workload's calls, in order: a task drawn uniformly, then its user message. */
export function* workload(seed: number): Generator<WorkloadCall, never, void> {
  const rnd = seededRandom(seed);
  for (;;) {
    const task = pick(rnd, TASKS);
    yield { task: task.name, messages: [{ role: 'system', content: task.system }, { role: 'user', content: task.draw(rnd) }] };
  }
}
