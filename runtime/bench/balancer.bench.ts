// Balancer column of `npm run bench`: what each strategy costs per pick, in ns and as a
// multiple of plain round robin measured in the same run (the ratio is what holds across
// machines), at 10 and 100 instances. The last row is a whole admission through
// InstancePool (pick, slot accounting, finish with retry decision) on round robin, which
// is what the router pays per call on top of the tunnel.
//
//   node --conditions=@grpcrouter/source --import tsx runtime/bench/balancer.bench.ts
//
// BENCH_PICKS sets the picks per measurement (default 200 000). No assertions: numbers only.
import { createBalancer, type Balancer, type Candidate, type PickContext } from "../src/balancer/index.js";
import { InstancePool } from "../src/resilience/index.js";

const PICKS = Number(process.env.BENCH_PICKS ?? 200_000);
const RUNS = 5;

function fleet(n: number): Candidate[] {
  return Array.from({ length: n }, (_, i) => ({
    id: `instance-${i}`,
    weight: 1 + (i % 3),
    labels: { tenant: ["acme", "globex", "initech", "umbrella"][i % 4]!, version: i % 10 === 0 ? "v2" : "v1" },
    // Nearly even load, as a balanced fleet has: bounded-load hashing spills only rarely.
    outstanding: i % 2,
    healthy: i % 17 !== 5,
  }));
}

const KEYS = Array.from({ length: 1024 }, (_, i) => `customer-${i * 7919}`);
const noMetadata = (): undefined => undefined;
const tenantMetadata = (key: string): string | undefined => (key === "x-tenant" ? "acme" : undefined);

interface Case {
  name: string;
  make: () => Balancer;
  ctx: (i: number, cs: readonly Candidate[]) => PickContext;
}

const plain = (_i: number): PickContext => ({ method: "/demo.v1.Echo/Say", metadata: noMetadata, routingKey: undefined });
const keyed = (i: number): PickContext => ({ method: "/demo.v1.Echo/Say", metadata: noMetadata, routingKey: KEYS[i & 1023] });

const CASES: Case[] = [
  { name: "round robin", make: () => createBalancer("round_robin"), ctx: plain },
  { name: "weighted round robin", make: () => createBalancer("weighted_round_robin"), ctx: plain },
  { name: "least outstanding (P2C)", make: () => createBalancer("least_outstanding"), ctx: plain },
  { name: "consistent hash, keyed", make: () => createBalancer("consistent_hash"), ctx: keyed },
  {
    name: "subset tenant=<metadata>",
    make: () => createBalancer({ strategy: "subset", selector: { tenant: { metadata: "x-tenant" } } }),
    ctx: () => ({ method: "/m", metadata: tenantMetadata }),
  },
  { name: "split 5 % → version=v2", make: () => createBalancer({ strategy: "split", splits: [{ labels: { version: "v2" }, percent: 5 }] }), ctx: plain },
  {
    name: "pin by metadata (pinned)",
    make: () => createBalancer({ strategy: "pin", metadataKey: "x-instance" }),
    ctx: (_i, cs) => {
      const id = cs[3]!.id;
      return { method: "/m", metadata: (k) => (k === "x-instance" ? id : undefined) };
    },
  },
  {
    name: "custom function (lowest load)",
    make: () =>
      createBalancer(
        { strategy: "custom", name: "lowest" },
        {
          custom: {
            lowest: (cs) => cs.reduce<Candidate | undefined>((best, c) => (c.healthy && (!best || c.outstanding < best.outstanding) ? c : best), undefined),
          },
        },
      ),
    ctx: plain,
  },
];

/** ns per pick, the median of RUNS measurements. Contexts are built before timing. */
function measure(c: Case, cs: readonly Candidate[]): number {
  const b = c.make();
  const ctxs = Array.from({ length: 1024 }, (_, i) => c.ctx(i, cs));
  let sink = 0;
  for (let i = 0; i < 20_000; i++) sink += b.pick(cs, ctxs[i & 1023]!) ? 1 : 0; // warm up (JIT, rings, groups)
  const times: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < PICKS; i++) sink += b.pick(cs, ctxs[i & 1023]!) ? 1 : 0;
    times.push(Number(process.hrtime.bigint() - t0) / PICKS);
  }
  if (sink < 0) console.log(sink);
  times.sort((a, b) => a - b);
  return times[RUNS >> 1]!;
}

async function measurePool(n: number): Promise<number> {
  const pool = new InstancePool({ service: "demo.v1.Echo", balancer: createBalancer("round_robin"), resilience: { heartbeatTimeoutMs: 0 } });
  for (let i = 0; i < n; i++) pool.add({ id: `instance-${i}`, maxConcurrentCalls: 100 });
  const ok = { code: 0, delivered: true };
  const picks = Math.floor(PICKS / 4);
  const times: number[] = [];
  for (let r = 0; r < RUNS + 1; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < picks; i++) {
      const attempt = await pool.call({ method: "/demo.v1.Echo/Say" }).next();
      attempt.finish(ok);
    }
    if (r > 0) times.push(Number(process.hrtime.bigint() - t0) / picks); // run 0 warms up
  }
  pool.close();
  times.sort((a, b) => a - b);
  return times[RUNS >> 1]!;
}

const SIZES = [10, 100];
const rows: string[][] = [];
const base = new Map<number, number>();
for (const c of CASES) {
  const row = [c.name];
  for (const n of SIZES) {
    const ns = measure(c, fleet(n));
    if (c.name === "round robin") base.set(n, ns);
    row.push(`${ns.toFixed(0)} ns`, `${(ns / base.get(n)!).toFixed(1)}×`);
  }
  rows.push(row);
}
const poolRow = ["InstancePool admit+finish (round robin)"];
for (const n of SIZES) {
  const ns = await measurePool(n);
  poolRow.push(`${ns.toFixed(0)} ns`, `${(ns / base.get(n)!).toFixed(1)}×`);
}
rows.push(poolRow);

const header = ["strategy", ...SIZES.flatMap((n) => [`${n} inst`, "vs RR"])];
const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
const line = (cells: string[]) => cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ");
console.log(`balancer: cost per pick (median of ${RUNS} × ${PICKS} picks)`);
console.log(line(header));
for (const r of rows) console.log(line(r));
