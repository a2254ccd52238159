/**
 * CloudWatch Logs' matching of a metric filter pattern against one log event, for the two forms
 * this library's filters use: a JSON pattern of one string comparison (`{ $.event = "x" }`), which
 * matches only an event that is a JSON object whose top-level field equals the value; and
 * unstructured terms (`"a b" "c"`: every term, or with `?` before each, any term), which match the
 * words anywhere in the event. Any other form throws, so a pattern this cannot judge fails a test.
 */
export function filterMatches(pattern: string, event: string): boolean {
  const json = /^\{\s*\$\.([A-Za-z_][A-Za-z0-9_]*)\s*=\s*"([^"]*)"\s*\}$/.exec(pattern.trim());
  if (json) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(event);
    } catch {
      return false;
    }
    return typeof parsed === 'object' && parsed !== null && (parsed as Record<string, unknown>)[json[1]] === json[2];
  }
  const terms = [...pattern.matchAll(/(\?)?"([^"]*)"/g)];
  if (terms.length === 0 || terms.map((t) => t[0]).join(' ') !== pattern.trim()) throw new Error(`a filter pattern this helper cannot judge: ${pattern}`);
  const any = terms.every((t) => t[1] === '?');
  return any ? terms.some((t) => event.includes(t[2])) : terms.every((t) => event.includes(t[2]));
}
