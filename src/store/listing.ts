// Paged listings (admin console and API): the order and cursor shared by memory.ts and redis.ts.

export const byCodeUnit = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** listSubjects order, shared with redis.ts: newest family end first, then subject in descending code-unit order. */
export function newestFirst(a: { end: number; subject: string }, b: { end: number; subject: string }): number {
  return b.end - a.end || byCodeUnit(b.subject, a.subject);
}

/** The listSubjects cursor: the last row of a page, `<end>:<subject>` (the subject may contain ':'). */
export function subjectCursor(end: number, subject: string): string {
  return `${end}:${subject}`;
}

export function parseSubjectCursor(cursor: string): { end: number; subject: string } | undefined {
  const colon = cursor.indexOf(':');
  const end = Number(cursor.slice(0, colon));
  if (colon < 1 || !Number.isSafeInteger(end)) return undefined;
  return { end, subject: cursor.slice(colon + 1) };
}
