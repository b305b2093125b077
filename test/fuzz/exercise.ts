// What the fuzz suite does with a model file: load it twice (normally and
// vocabOnly) and, when a load works, tokenize, generate 4 tokens greedily and
// embed. The verdict is the worst of the two: an uncoded failure, else a coded
// one, else ok.
import { loadModel, type Model } from '../../src/index.js';
import { judge, type Verdict } from './worker-kit.js';

async function once(path: string, vocabOnly: boolean, codes: Set<string>): Promise<Verdict> {
  let model: Model | undefined;
  try {
    model = await loadModel(path, { vocabOnly });
    model.tokenize('Once upon a time, café 🦙 \u0000');
    model.detokenize(model.tokenize('a cat'));
    if (!vocabOnly) {
      // One thread: ggml's threads spin, and the suite shares two cores with other tests.
      const ctx = await model.createContext({ contextSize: 64, threads: 1 });
      await ctx.complete('Once', { maxTokens: 4, temperature: 0 });
      const embedder = await model.createContext({ contextSize: 64, embeddings: true, threads: 1 });
      await embedder.embed(['Once upon a time']);
    }
    return { outcome: 'ok', detail: '' };
  } catch (err) {
    return judge(err, codes);
  } finally {
    await model?.dispose();
  }
}

export async function exercise(path: string, codes: Set<string>): Promise<Verdict> {
  const verdicts = [await once(path, false, codes), await once(path, true, codes)];
  return verdicts.find((v) => v.outcome === 'uncoded') ?? verdicts.find((v) => v.outcome === 'coded') ?? verdicts[0]!;
}
