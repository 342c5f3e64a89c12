// Where two V8 CPU profiles (--cpu-prof, e.g. from CPU_PROF=dir npm run bench) differ, in microseconds of self time
// per operation, grouped by source: a package, a node: module, a file of src/, or the native work named below.
//
//   node bench/profile-diff.ts A.cpuprofile OPS_A B.cpuprofile OPS_B [--functions REGEX] [--top N]
//
// OPS_* is how many operations (requests, refreshes) the profile covers, warm-up included: wrk's totals, or the
// bench's req/s times seconds. --functions lists B's functions whose source matches REGEX instead, per operation.
import { readFileSync } from 'node:fs';

interface CallFrame { functionName: string; url: string; lineNumber: number }
interface ProfileNode { id: number; callFrame: CallFrame }
interface CpuProfile { nodes: ProfileNode[]; samples: number[]; startTime: number; endTime: number }

// Native frames that stand for a whole kind of work: kept apart instead of folded into "(native)".
const NATIVE_WORK = new Set(['jobPromise', 'writeUtf8String', 'writeLatin1String', 'writev', '(garbage collector)', '(program)']);

function sourceOf(f: CallFrame): string {
  if (NATIVE_WORK.has(f.functionName)) return f.functionName;
  if (f.url === '') return '(native)';
  if (f.url.startsWith('node:')) return f.url;
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(f.url);
  if (pkg) return pkg[1]!;
  const own = /\/((?:src|bench)\/.*)$/.exec(f.url);
  return own ? own[1]! : f.url;
}

/** Self time in microseconds per key, idle excluded. */
function selfTime(file: string, key: (f: CallFrame) => string | null): Map<string, number> {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const usPerSample = (p.endTime - p.startTime) / p.samples.length;
  const out = new Map<string, number>();
  for (const id of p.samples) {
    const f = byId.get(id)!.callFrame;
    if (f.functionName === '(idle)') continue;
    const k = key(f);
    if (k !== null) out.set(k, (out.get(k) ?? 0) + usPerSample);
  }
  return out;
}

function main(argv: string[]): void {
  const flag = (name: string): string | undefined => {
    const i = argv.indexOf(name);
    return i === -1 ? undefined : argv.splice(i, 2)[1];
  };
  const functions = flag('--functions');
  const top = Number(flag('--top') ?? 30);
  const [fileA, opsA, fileB, opsB] = argv;
  if (!fileA || !fileB || !(Number(opsA) > 0) || !(Number(opsB) > 0)) {
    process.stderr.write('usage: node bench/profile-diff.ts A.cpuprofile OPS_A B.cpuprofile OPS_B [--functions REGEX] [--top N]\n');
    process.exit(2);
  }
  const fmt = (us: number): string => us.toFixed(1).padStart(8);
  if (functions !== undefined) {
    const re = new RegExp(functions);
    const where = (f: CallFrame): string => (f.url.includes('node_modules/') ? `${sourceOf(f)}/${f.url.split('/').pop()}` : sourceOf(f));
    const b = selfTime(fileB, (f) => (re.test(sourceOf(f)) ? `${f.functionName || '(anonymous)'} ${where(f)}:${f.lineNumber + 1}` : null));
    for (const [k, us] of [...b].sort((x, y) => y[1] - x[1]).slice(0, top)) process.stdout.write(`${fmt(us / Number(opsB))}  ${k}\n`);
    return;
  }
  const a = selfTime(fileA, sourceOf);
  const b = selfTime(fileB, sourceOf);
  const rows = [...new Set([...a.keys(), ...b.keys()])].map((k) => ({ k, a: (a.get(k) ?? 0) / Number(opsA), b: (b.get(k) ?? 0) / Number(opsB) }));
  const total = (side: 'a' | 'b'): number => rows.reduce((s, r) => s + r[side], 0);
  process.stdout.write(`us of CPU per operation               A        B    B - A\n`);
  process.stdout.write(`total                          ${fmt(total('a'))} ${fmt(total('b'))} ${fmt(total('b') - total('a'))}\n`);
  for (const r of rows.sort((x, y) => y.b - y.a - (x.b - x.a)).slice(0, top)) {
    process.stdout.write(`${r.k.slice(0, 30).padEnd(30)} ${fmt(r.a)} ${fmt(r.b)} ${fmt(r.b - r.a)}\n`);
  }
}

main(process.argv.slice(2));
