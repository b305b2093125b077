// The router's files in its cache directory, opened together: dataset.db
// (the dataset and readiness; it cannot be made again, so a file that does not
// open stops startup), cache.db (set aside and started again when broken) and
// the semantic index beside it. What was opened is closed again when a later
// one fails.
import { join } from 'node:path';
import { UnderstudyError } from '../errors.js';
import { errorText } from '../validate.js';
import { AnswerCache } from './answer-cache.js';
import type { Clock } from './clock.js';
import { settingSource, type ResolvedSettings } from './config.js';
import { Dataset } from './dataset.js';
import { Readiness } from './readiness.js';
import { SemanticIndex } from './semantic-index.js';
import { openRebuildable, openStore, type Db } from './store.js';

export interface RouterStores {
  dataDb: Db;
  cacheDb: Db;
  dataset: Dataset;
  readiness: Readiness;
  cache: AnswerCache;
  semantic: SemanticIndex | undefined;
}

export function openRouterStores(settings: ResolvedSettings, cacheDir: string, clock: Clock, semanticOn: boolean,
  report: { warn(message: string): void; warnSoon(message: string): void }): RouterStores {
  const dirSource = settingSource(settings, 'cacheDir');
  const data = openStore(cacheDir, 'dataset.db', true, (db) => ({
    dataset: new Dataset(db),
    readiness: new Readiness(db, { threshold: settings.simThreshold, window: settings.readinessWindow, min: settings.readinessMin, now: clock.now }),
  }), dirSource);
  let semantic: SemanticIndex | undefined;
  let cache: { db: Db; value: AnswerCache };
  try {
    cache = openRebuildable(cacheDir, 'cache.db', (db) => new AnswerCache(db, {
      maxEntries: settings.cacheMaxEntries,
      ...(settings.cacheTtl ? { ttl: settings.cacheTtl } : {}),
      onRemove: (rows) => semantic?.remove(rows),
      onError: (err) => report.warn(`cache write failed: ${errorText(err)}`),
      now: clock.now,
    }), (why) => report.warnSoon(`the answer cache could not be opened (${why})`), clock.now, dirSource);
  } catch (err) {
    data.db.close();
    throw err;
  }
  try {
    semantic = semanticOn ? new SemanticIndex(join(cacheDir, 'semantic'), cache.db, {
      onError: (err) => report.warn(`semantic index: ${errorText(err)}`),
      onWarning: (message) => report.warn(message),
    }) : undefined;
  } catch (err) {
    cache.db.close();
    data.db.close();
    throw new UnderstudyError('INVALID_CONFIG',
      `cannot use ${join(cacheDir, 'semantic')} for the semantic index: ${errorText(err)}`, { cause: err });
  }
  return { dataDb: data.db, cacheDb: cache.db, ...data.value, cache: cache.value, semantic };
}
