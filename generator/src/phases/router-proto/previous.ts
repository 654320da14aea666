// Reads back a router proto that grpcrouter wrote earlier, to keep its field numbers and
// names. We only parse our own output format (files carrying the generated marker), line by
// line: the service line names the service it routes, method fields end in `// rpc Name`,
// and removed methods are `reserved N; // rpc Name` + `reserved "field";`.
import { isGenerated } from "../../marker.js";

export interface PreviousService {
  /** Fully-qualified name of the routed service, e.g. "demo.v1.Echo". */
  service: string;
  names: RouterNames;
  /** method name → { number, field name } */
  methods: Map<string, { number: number; fieldName: string }>;
  /** Numbers of removed methods (10..15 excluded), with the method name when known. */
  reserved: { number: number; method: string }[];
  reservedNames: Set<string>;
}

export interface RouterNames {
  service: string;
  instanceMessage: string;
  routerMessage: string;
  instanceFrame: string;
  routerFrame: string;
}

const serviceLine = /^service (\w+) \{ \/\/ routes ([\w.]+)$/;
const registerLine = /^\s*rpc Register\(stream (\w+)\) returns \(stream (\w+)\);/;
const messageLine = /^message (\w+) \{/;
const framesLine = /^\s*repeated (\w+) frames = 1;/;
const methodFieldLine = /^\s*\.?[\w.]+ (\w+) = (\d+); \/\/ rpc (\w+)$/;
const reservedNumberLine = /^\s*reserved (\d+); \/\/ rpc (\w+)/;
const reservedNameLine = /^\s*reserved "(\w+)";/;

/** The services of a previous router proto; empty when the text is not ours. */
export function parsePreviousRouterProto(text: string): Map<string, PreviousService> {
  const out = new Map<string, PreviousService>();
  if (!isGenerated(text)) return out;
  let current: PreviousService | undefined;
  let currentMessage = "";
  for (const line of text.split("\n")) {
    let m: RegExpExecArray | null;
    if ((m = serviceLine.exec(line))) {
      current = {
        service: m[2]!,
        names: { service: m[1]!, instanceMessage: "", routerMessage: "", instanceFrame: "", routerFrame: "" },
        methods: new Map(),
        reserved: [],
        reservedNames: new Set(),
      };
      out.set(current.service, current);
      continue;
    }
    if (!current) continue;
    if ((m = registerLine.exec(line))) {
      current.names.instanceMessage = m[1]!;
      current.names.routerMessage = m[2]!;
    } else if ((m = messageLine.exec(line))) {
      currentMessage = m[1]!;
    } else if ((m = framesLine.exec(line))) {
      if (currentMessage === current.names.instanceMessage) current.names.instanceFrame = m[1]!;
      if (currentMessage === current.names.routerMessage) current.names.routerFrame = m[1]!;
    } else if (currentMessage !== "" && currentMessage === current.names.routerFrame) {
      // Both frames carry the same numbers; the router frame is the one we read.
      if ((m = methodFieldLine.exec(line))) current.methods.set(m[3]!, { number: Number(m[2]), fieldName: m[1]! });
      else if ((m = reservedNumberLine.exec(line))) current.reserved.push({ number: Number(m[1]), method: m[2]! });
      else if ((m = reservedNameLine.exec(line))) current.reservedNames.add(m[1]!);
    }
  }
  return out;
}
