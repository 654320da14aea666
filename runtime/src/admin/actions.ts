// Operators' actions through the Admin service: drain, eject and restore an instance, change
// its weight, pause and resume a service, replay a recorded call. Routers register what they
// can act on (one target per service they route); the Admin service and the dashboard call
// `act` and `replay` after checking who asks (`adminCallerRefusal`). Every action is written
// to the router's audit trail and streamed to every watcher as an `action` event, so other
// viewers see it happen.
import { create } from "@bufbuild/protobuf";
import { ActionKind, ActionSchema, type Action, type ActionRequest } from "../gen/grpcrouter/v1/admin_pb.js";
import { auditEvent, type AuditSink } from "../log/audit.js";
import type { PeerCertificateInfo } from "../tunnel/peer-certificate.js";
import type { ServerCall } from "../tunnel/http2/server-call.js";

/** The gRPC status an action fails with, and why. */
export class ActionError extends Error {
  constructor(
    readonly code: "INVALID_ARGUMENT" | "NOT_FOUND" | "PERMISSION_DENIED" | "FAILED_PRECONDITION" | "UNAVAILABLE",
    message: string,
  ) {
    super(message);
    this.name = "ActionError";
  }
}

/** What a router offers for one of its services. */
export interface ActionTarget {
  readonly service: string;
  /** Applies a checked action; returns what changed, in words; throws ActionError. */
  apply(request: ActionRequest): string;
  /** Whether new calls are refused by an operator's pause. */
  readonly paused: boolean;
  /** Runs `call` through the router as if a client had made it (replay). False when the method is not routed. */
  dispatch(call: ServerCall, request: Buffer | undefined): boolean;
  /** The router's audit trail, if it keeps one. */
  readonly audit: AuditSink | undefined;
}

const ACTION_NAMES: Readonly<Record<number, string>> = {
  [ActionKind.DRAIN]: "drain",
  [ActionKind.UNDRAIN]: "undrain",
  [ActionKind.EJECT]: "eject",
  [ActionKind.RESTORE]: "restore",
  [ActionKind.SET_WEIGHT]: "set weight",
  [ActionKind.PAUSE]: "pause",
  [ActionKind.RESUME]: "resume",
};

/** The dashboard's names for the kinds ("drain", "setWeight", …). */
export function actionKindOf(name: unknown): ActionKind | undefined {
  const kinds: Record<string, ActionKind> = {
    drain: ActionKind.DRAIN,
    undrain: ActionKind.UNDRAIN,
    eject: ActionKind.EJECT,
    restore: ActionKind.RESTORE,
    setWeight: ActionKind.SET_WEIGHT,
    pause: ActionKind.PAUSE,
    resume: ActionKind.RESUME,
  };
  return typeof name === "string" && Object.hasOwn(kinds, name) ? kinds[name] : undefined;
}

const MAX_NOTE = 500;
const MAX_WEIGHT = 10_000;

/** Checks an action's fields; throws ActionError naming the field. */
function checkAction(r: ActionRequest): void {
  if (ACTION_NAMES[r.kind] === undefined)
    throw new ActionError("INVALID_ARGUMENT", `kind: unknown action ${r.kind} (drain, undrain, eject, restore, set weight, pause, resume)`);
  if (r.service === "") throw new ActionError("INVALID_ARGUMENT", "service: required (a fully-qualified service name)");
  const onService = r.kind === ActionKind.PAUSE || r.kind === ActionKind.RESUME;
  if (!onService && r.instanceId === "") throw new ActionError("INVALID_ARGUMENT", `instance_id: required to ${ACTION_NAMES[r.kind]} an instance`);
  if (r.kind === ActionKind.SET_WEIGHT && !(Number.isInteger(r.weight) && r.weight >= 1 && r.weight <= MAX_WEIGHT)) {
    throw new ActionError("INVALID_ARGUMENT", `weight: must be an integer in 1..${MAX_WEIGHT}, got ${r.weight}`);
  }
  if (r.note.length > MAX_NOTE) throw new ActionError("INVALID_ARGUMENT", `note: at most ${MAX_NOTE} characters, got ${r.note.length}`);
}

/** Who may act: a caller on this machine, or one that proved a client certificate (mTLS). */
export function adminCallerRefusal(peer: string, certificate: PeerCertificateInfo | undefined): string | undefined {
  if (certificate !== undefined || isLoopbackPeer(peer)) return undefined;
  return `Admin actions are allowed only from this machine (loopback) or with a verified client certificate (mTLS: --tls-client-ca); ${peer || "the caller"} has neither`;
}

/** "127.0.0.1:5000", "[::1]:5000", "::ffff:127.0.0.1", "::1" … */
export function isLoopbackPeer(peer: string): boolean {
  const host = peer.startsWith("[") ? peer.slice(1, peer.indexOf("]")) : /^[^:]+:\d+$/.test(peer) ? peer.slice(0, peer.lastIndexOf(":")) : peer;
  // Socket addresses are IP literals; anything else is not trusted as local.
  return /^(::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/i.test(host) || host === "::1";
}

/** How the caller appears in the audit log and to other viewers. */
export function actorOf(peer: string, certificate: PeerCertificateInfo | undefined): string {
  return certificate ? `${certificate.commonName ?? certificate.fingerprint256} (${peer})` : peer;
}

/** The registry of action targets, one list per service (a reload briefly holds two routers). */
export class AdminActions {
  private readonly targets = new Map<string, ActionTarget[]>();

  constructor(private readonly publish: (action: Action) => void) {}

  /** A router offers `target`; the returned function withdraws it (router closed). */
  register(target: ActionTarget): () => void {
    const list = this.targets.get(target.service) ?? [];
    list.push(target);
    this.targets.set(target.service, list);
    return () => {
      const l = this.targets.get(target.service);
      if (!l) return;
      const i = l.indexOf(target);
      if (i >= 0) l.splice(i, 1);
      if (l.length === 0) this.targets.delete(target.service);
    };
  }

  /** The newest router of `service` (a replacement registers before the old one closes). */
  target(service: string): ActionTarget | undefined {
    const l = this.targets.get(service);
    return l?.[l.length - 1];
  }

  isPaused(service: string): boolean {
    return this.target(service)?.paused ?? false;
  }

  /** Applies an action for `actor`: checked, applied, audited, streamed. Throws ActionError. */
  act(request: ActionRequest, actor: string): string {
    checkAction(request);
    const target = this.target(request.service);
    if (!target) throw new ActionError("NOT_FOUND", `service: this router does not route ${JSON.stringify(request.service)}`);
    const summary = target.apply(request);
    target.audit?.(
      auditEvent("operatorAction", {
        service: request.service,
        ...(request.instanceId ? { instanceId: request.instanceId } : {}),
        principal: actor,
        action: ACTION_NAMES[request.kind]!,
        detail: summary,
        ...(request.note ? { reason: request.note } : {}),
      }),
    );
    this.publish(
      create(ActionSchema, {
        kind: request.kind,
        service: request.service,
        instanceId: request.instanceId,
        weight: request.weight,
        note: request.note,
        actor,
        summary,
      }),
    );
    return summary;
  }
}
