// Keeps secrets out of everything the router writes (log lines, dataset,
// cache): the configured API key wherever it appears, and bearer tokens.
export function makeRedactor(secrets: (string | undefined)[]): (text: string) => string {
  const exact = secrets.filter((s): s is string => typeof s === 'string' && s.length >= 8);
  return (text) => {
    let out = text;
    for (const secret of exact) if (out.includes(secret)) out = out.split(secret).join('[REDACTED]');
    return out.replace(/\b(Bearer|Authorization:)\s+[A-Za-z0-9._~+/=-]{8,}/g, '$1 [REDACTED]');
  };
}
