// The Admin gRPC service (grpcrouter.v1.Admin) on @grpc/grpc-js, with protobuf-es doing the
// (de)serialization, plus a small client for tools (the VS Code extension, tests).
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  ActionRequestSchema,
  ActionResultSchema,
  Admin,
  ReplayRequestSchema,
  ReplayResultSchema,
  type ActionRequest,
  type ActionResult,
  type ReplayRequest,
  type ReplayResult,
  EventSchema,
  GetSnapshotRequestSchema,
  SnapshotSchema,
  WatchRequestSchema,
  type Event,
  type Snapshot,
  type WatchRequest,
} from "../gen/grpcrouter/v1/admin_pb.js";
import { grpcCodec, grpcServiceDefinition } from "../grpc-definition.js";
import type { AdminHub } from "./hub.js";
import { ActionError, actorOf, adminCallerRefusal } from "./actions.js";
import { replayCall } from "./replay.js";
import { GrpcServer } from "../tunnel/http2/server.js";
import { serveServerStream, serveUnary, StatusError } from "../tunnel/http2/typed.js";
import { peerCertificateOf, type PeerCertificateInfo } from "../tunnel/peer-certificate.js";

// The client's codecs (the server's come with the definition).
const snapshotReq = grpcCodec(GetSnapshotRequestSchema);
const snapshotRes = grpcCodec(SnapshotSchema);
const watchReq = grpcCodec(WatchRequestSchema);
const watchRes = grpcCodec(EventSchema);
const actReq = grpcCodec(ActionRequestSchema);
const actRes = grpcCodec(ActionResultSchema);
const replayReq = grpcCodec(ReplayRequestSchema);
const replayRes = grpcCodec(ReplayResultSchema);
const GET_SNAPSHOT_PATH = `/${Admin.typeName}/${Admin.method.getSnapshot.name}`;
const WATCH_PATH = `/${Admin.typeName}/${Admin.method.watch.name}`;
const ACT_PATH = `/${Admin.typeName}/${Admin.method.act.name}`;
const REPLAY_PATH = `/${Admin.typeName}/${Admin.method.replay.name}`;

/**
 * Runs an operator's action or replay for the caller at `peer`: refused (PERMISSION_DENIED)
 * unless the caller is on this machine or proved a client certificate; ActionErrors become
 * their gRPC status.
 */
async function asOperator<T>(peer: string, certificate: PeerCertificateInfo | undefined, run: (actor: string) => T | Promise<T>): Promise<T> {
  const refusal = adminCallerRefusal(peer, certificate);
  if (refusal !== undefined) throw new StatusError(grpc.status.PERMISSION_DENIED, `grpcrouter: ${refusal}`);
  try {
    return await run(actorOf(peer, certificate));
  } catch (e) {
    if (e instanceof ActionError) throw new StatusError(grpc.status[e.code], `grpcrouter: ${e.message}`);
    throw e;
  }
}

function act(hub: AdminHub, req: ActionRequest, peer: string, cert: PeerCertificateInfo | undefined): Promise<ActionResult> {
  return asOperator(peer, cert, (actor) => create(ActionResultSchema, { summary: hub.actions.act(req, actor) }));
}

function replay(hub: AdminHub, req: ReplayRequest, peer: string, cert: PeerCertificateInfo | undefined): Promise<ReplayResult> {
  return asOperator(peer, cert, (actor) => replayCall(hub, req, actor));
}

/** grpc-js definition of grpcrouter.v1.Admin, built from the protobuf-es descriptor. */
export const adminServiceDefinition: grpc.ServiceDefinition = grpcServiceDefinition(Admin);

export interface AdminServiceOptions {
  /** Told of every request that reads the router's state, by method name ("GetSnapshot", "Watch"), e.g. to count it. */
  onRequest?(method: string): void;
}

/** Adds grpcrouter.v1.Admin, served from `hub`, to the router's GrpcServer or a grpc-js server (before or after bind). */
export function addAdminService(server: GrpcServer | grpc.Server, hub: AdminHub, options: AdminServiceOptions = {}): void {
  const onRequest = options.onRequest ?? (() => {});
  if (server instanceof GrpcServer) {
    serveUnary(server, GET_SNAPSHOT_PATH, GetSnapshotRequestSchema, SnapshotSchema, () => {
      onRequest(Admin.method.getSnapshot.name);
      return hub.snapshot({ includeMessages: false });
    });
    serveUnary(server, ACT_PATH, ActionRequestSchema, ActionResultSchema, (req, call) => act(hub, req, call.peer, call.peerCertificate()));
    serveUnary(server, REPLAY_PATH, ReplayRequestSchema, ReplayResultSchema, (req, call) => replay(hub, req, call.peer, call.peerCertificate()));
    serveServerStream(server, WATCH_PATH, WatchRequestSchema, EventSchema, async (req, sink) => {
      onRequest(Admin.method.watch.name);
      const watcher = hub.watch({ includeMessages: req.includeMessages, includeBodies: req.includeBodies, services: req.services });
      sink.signal.addEventListener("abort", () => watcher.close());
      // Pull from the bounded queue only as fast as the HTTP/2 stream drains: a slow
      // reader fills its own queue and loses events, the router never waits.
      for (;;) {
        const ev = watcher.take();
        if (ev) {
          if (!sink.write(ev)) await sink.drained();
          continue;
        }
        if (watcher.closed || sink.signal.aborted) break;
        await watcher.waitForEvents();
      }
      sink.end();
    });
    return;
  }
  server.addService(adminServiceDefinition, {
    GetSnapshot: (_call: grpc.ServerUnaryCall<unknown, Snapshot>, callback: grpc.sendUnaryData<Snapshot>) => {
      onRequest(Admin.method.getSnapshot.name);
      callback(null, hub.snapshot({ includeMessages: false }));
    },
    Act: (call: grpc.ServerUnaryCall<ActionRequest, ActionResult>, callback: grpc.sendUnaryData<ActionResult>) => {
      act(hub, call.request, call.getPeer(), peerCertificateOf(call)).then(
        (r) => callback(null, r),
        (e: unknown) => callback(statusOf(e)),
      );
    },
    Replay: (call: grpc.ServerUnaryCall<ReplayRequest, ReplayResult>, callback: grpc.sendUnaryData<ReplayResult>) => {
      replay(hub, call.request, call.getPeer(), peerCertificateOf(call)).then(
        (r) => callback(null, r),
        (e: unknown) => callback(statusOf(e)),
      );
    },
    Watch: (call: grpc.ServerWritableStream<WatchRequest, Event>) => {
      onRequest(Admin.method.watch.name);
      const req = call.request;
      const watcher = hub.watch({ includeMessages: req.includeMessages, includeBodies: req.includeBodies, services: req.services });
      const stop = () => watcher.close();
      call.on("cancelled", stop);
      call.on("close", stop);
      call.on("error", stop);
      void (async () => {
        // Pull from the bounded queue only as fast as the HTTP/2 stream drains: a slow
        // reader fills its own queue and loses events, the router never waits.
        for (;;) {
          const ev = watcher.take();
          if (ev) {
            if (!call.write(ev)) await drainedOrClosed(call);
            continue;
          }
          if (watcher.closed) break;
          await watcher.waitForEvents();
        }
        if (!call.cancelled) call.end();
      })();
    },
  });
}

function statusOf(e: unknown): Partial<grpc.StatusObject> {
  if (e instanceof StatusError) return { code: e.code, details: e.message };
  return { code: grpc.status.UNKNOWN, details: (e as Error)?.message ?? String(e) };
}

function drainedOrClosed(call: grpc.ServerWritableStream<WatchRequest, Event>): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      call.off("drain", done);
      call.off("close", done);
      call.off("cancelled", done);
      resolve();
    };
    call.on("drain", done);
    call.on("close", done);
    call.on("cancelled", done);
  });
}

export interface AdminClient {
  getSnapshot(): Promise<Snapshot>;
  /** The Watch stream as an async iterable; breaking out of the loop (or `signal`) cancels it. */
  watch(request?: Partial<Pick<WatchRequest, "includeMessages" | "includeBodies" | "services">>, signal?: AbortSignal): AsyncIterable<Event>;
  /** An operator's action (drain, eject, weight, pause…); rejects with the gRPC error. */
  act(request: Partial<Pick<ActionRequest, "kind" | "service" | "instanceId" | "weight" | "note">>): Promise<ActionResult>;
  /** Replays a recorded call; rejects with the gRPC error. */
  replay(request: Partial<Pick<ReplayRequest, "callId" | "requestsJson">>): Promise<ReplayResult>;
  close(): void;
}

/** A client of a router's Admin service at `target` ("host:port"). Plaintext unless credentials are given. */
export function createAdminClient(
  target: string,
  credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(),
  options: grpc.ChannelOptions = {},
): AdminClient {
  const client = new grpc.Client(target, credentials, options);
  return {
    getSnapshot: () =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(GET_SNAPSHOT_PATH, snapshotReq.serialize, snapshotRes.deserialize, create(GetSnapshotRequestSchema), (err, res) =>
          err || !res ? reject(err ?? new Error("empty GetSnapshot response")) : resolve(res),
        );
      }),
    watch(request = {}, signal) {
      return {
        async *[Symbol.asyncIterator]() {
          const stream = client.makeServerStreamRequest(WATCH_PATH, watchReq.serialize, watchRes.deserialize, create(WatchRequestSchema, request));
          const abort = () => stream.cancel();
          signal?.addEventListener("abort", abort, { once: true });
          try {
            for await (const ev of stream as AsyncIterable<Event>) yield ev;
          } catch (e) {
            if ((e as { code?: number }).code !== grpc.status.CANCELLED) throw e;
          } finally {
            signal?.removeEventListener("abort", abort);
            stream.cancel();
          }
        },
      };
    },
    act: (request) =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(ACT_PATH, actReq.serialize, actRes.deserialize, create(ActionRequestSchema, request), (err, res) =>
          err || !res ? reject(err ?? new Error("empty Act response")) : resolve(res),
        );
      }),
    replay: (request) =>
      new Promise((resolve, reject) => {
        client.makeUnaryRequest(REPLAY_PATH, replayReq.serialize, replayRes.deserialize, create(ReplayRequestSchema, request), (err, res) =>
          err || !res ? reject(err ?? new Error("empty Replay response")) : resolve(res),
        );
      }),
    close: () => client.close(),
  };
}
