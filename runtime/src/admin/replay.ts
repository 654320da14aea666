// Replays a recorded call through the router (Admin Replay, the dashboard's "Replay"): its
// method and request metadata as the router received them, its requests as proto3 JSON
// (edited or not) encoded with the module's descriptors, the hub's `describe` — the same
// schemas the dashboard decodes bodies with. The call enters the router's method handler
// as an in-process client call (no socket, no TLS to satisfy), so it takes the normal path —
// pause, rate limits, client authorization, balancer, retries — and shows as a new call
// carrying `grpcrouter-replay-of: <id>`, without the original caller's credentials.
import { create, fromBinary, fromJsonString, toBinary, toJsonString } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { ReplayResultSchema, type ReplayRequest, type ReplayResult } from "../gen/grpcrouter/v1/admin_pb.js";
import { auditEvent } from "../log/audit.js";
import { ActionError } from "./actions.js";
import type { AdminHub } from "./hub.js";
import { serviceOf } from "./hub-history.js";
import type { CallListener, ServerCall } from "../tunnel/http2/server-call.js";

/** The metadata key a replayed call carries: the id of the call it replays. */
export const REPLAY_OF_KEY = "grpcrouter-replay-of";

const MAX_REQUESTS = 1000;
const MAX_REQUEST_BYTES = 4 * 1024 * 1024;
const MAX_RESPONSES = 100;
const REPLAY_TIMEOUT_MS = 30_000;
/** Headers that belong to the original call's transport, not to what a replay should send. */
const TRANSPORT_KEYS = /^(:|grpc-|content-type$|te$|user-agent$|host$|content-length$|connection$)/;

/** A client call made in-process: what the router's handler sees of it, and its outcome. */
class ReplayCall implements ServerCall {
  readonly deadline = Date.now() + REPLAY_TIMEOUT_MS;
  private listener: CallListener | undefined;
  readonly responses: Buffer[] = [];
  responsesOmitted = 0;
  private done = false;
  private settle!: (r: { code: number; message: string }) => void;
  readonly outcome = new Promise<{ code: number; message: string }>((resolve) => (this.settle = resolve));

  constructor(
    readonly path: string,
    readonly metadata: grpc.Metadata,
    readonly peer: string,
    private readonly requests: readonly Buffer[] | undefined,
  ) {}

  peerCertificate(): undefined {
    return undefined;
  }

  listen(listener: CallListener): void {
    const first = !this.listener;
    this.listener = listener;
    if (!first || !this.requests) return;
    // A client stream: its messages and end arrive after the handler has started the call.
    setImmediate(() => {
      for (const r of this.requests!) if (!this.done) this.listener!.message(r);
      if (!this.done) this.listener!.halfClose();
    });
  }

  pause(): void {}
  resume(): void {}
  sendHeaders(): void {}

  write(message: Buffer, flushed?: () => void): boolean {
    if (this.responses.length < MAX_RESPONSES) this.responses.push(Buffer.from(message));
    else this.responsesOmitted++;
    flushed?.();
    return true;
  }

  drained(): Promise<void> {
    return Promise.resolve();
  }

  end(code: number, message: string): void {
    if (this.done) return;
    this.done = true;
    this.settle({ code, message });
  }

  get ended(): boolean {
    return this.done;
  }
}

function encodeRequests(hub: AdminHub, method: string, jsons: readonly string[]): Buffer[] {
  const schemas = hub.schemasOf(method);
  if (!schemas)
    throw new ActionError(
      "FAILED_PRECONDITION",
      `requests_json: the router has no schema for ${method}, so it cannot encode JSON (give the hub a describe function)`,
    );
  let total = 0;
  return jsons.map((json, i) => {
    let bytes: Uint8Array;
    try {
      bytes = toBinary(schemas.input, fromJsonString(schemas.input, json));
    } catch (e) {
      throw new ActionError("INVALID_ARGUMENT", `requests_json[${i}]: not a ${schemas.input.typeName} in proto3 JSON: ${(e as Error).message}`);
    }
    total += bytes.length;
    if (total > MAX_REQUEST_BYTES) throw new ActionError("INVALID_ARGUMENT", `requests_json: more than ${MAX_REQUEST_BYTES} bytes of requests`);
    return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  });
}

/** Runs a recorded call again; resolves with the new call's id, status and responses. Throws ActionError. */
export async function replayCall(hub: AdminHub, request: Pick<ReplayRequest, "callId" | "requestsJson">, actor: string): Promise<ReplayResult> {
  const rec = hub.recordedCall(request.callId);
  if (!rec)
    throw new ActionError("NOT_FOUND", `call_id: the router no longer holds call ${request.callId} (it keeps the calls in flight and the most recent ones)`);
  if (rec.kind === "bidi_streaming" || rec.kind === "server_streaming") {
    throw new ActionError(
      "FAILED_PRECONDITION",
      `call_id: ${rec.method} is ${rec.kind.replace("_", "-")}; only unary and client-streaming calls can be replayed`,
    );
  }
  if (request.requestsJson.length > MAX_REQUESTS)
    throw new ActionError("INVALID_ARGUMENT", `requests_json: at most ${MAX_REQUESTS} messages, got ${request.requestsJson.length}`);
  let requests: Buffer[];
  if (request.requestsJson.length > 0) requests = encodeRequests(hub, rec.method, request.requestsJson);
  else if (rec.requests) requests = rec.requests.map((r) => Buffer.from(r));
  else throw new ActionError("FAILED_PRECONDITION", `requests_json: the router did not keep the request bodies of call ${request.callId}; give them as JSON`);
  const single = rec.kind !== "client_streaming";
  if (single && requests.length !== 1)
    throw new ActionError("INVALID_ARGUMENT", `requests_json: a unary call takes exactly one request, got ${requests.length}`);
  const service = serviceOf(rec.method);
  const target = hub.actions.target(service);
  if (!target) throw new ActionError("UNAVAILABLE", `the router no longer routes ${service}`);

  const metadata = new grpc.Metadata();
  const original = rec.metadata instanceof grpc.Metadata ? rec.metadata.getMap() : {};
  // Credentials (what the dashboard redacts) are never replayed: whoever may replay must not
  // thereby act as the original caller. A router that authorizes clients refuses the replay.
  for (const [k, v] of Object.entries(original)) if (!TRANSPORT_KEYS.test(k) && k !== REPLAY_OF_KEY && !rec.redacted(k)) metadata.set(k, v);
  metadata.set(REPLAY_OF_KEY, String(request.callId));
  const call = new ReplayCall(rec.method, metadata, `replay by ${actor}`, single ? undefined : requests);
  // The new call is the one published with this very metadata object.
  let newId: bigint | undefined;
  const stop = hub.onEvent((e) => {
    if (e.type === "callStarted" && e.metadata === metadata) newId = BigInt(e.callId);
  });
  try {
    if (!target.dispatch(call, single ? requests[0] : undefined)) throw new ActionError("UNAVAILABLE", `the router no longer routes ${rec.method}`);
    const { code, message } = await call.outcome;
    target.audit?.(
      auditEvent("operatorAction", {
        service,
        principal: actor,
        action: "replay",
        detail: `replayed call ${request.callId} (${rec.method}) as call ${newId ?? "?"}: ${code === 0 ? "OK" : `code ${code}: ${message}`}`,
      }),
    );
    const schemas = hub.schemasOf(rec.method);
    const responsesJson = call.responses.map((b) => {
      if (!schemas) return "";
      try {
        return toJsonString(schemas.output, fromBinary(schemas.output, b));
      } catch (e) {
        return JSON.stringify({ error: `cannot decode ${schemas.output.typeName}: ${(e as Error).message}` });
      }
    });
    return create(ReplayResultSchema, { callId: newId ?? 0n, code, message, responsesJson });
  } finally {
    stop();
  }
}
