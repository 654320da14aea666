// The admin surface of the router: event hub, Admin gRPC service, web dashboard.
export {
  AdminHub,
  type AdminHubOptions,
  type HubEvent,
  type HubListener,
  type InstanceInfo,
  type CallId,
  type CallKind,
  type HealthInput,
  type TransportInput,
} from "./hub.js";
export { Watcher, type WatchOptions } from "./watcher.js";
export { describeFromRegistry, type DescribeMethod } from "./body.js";
export { DEFAULT_REDACTED, DEFAULT_REDACTED_KEYS, DEFAULT_REDACTED_PATTERN, REDACTED, type MetadataInput } from "./metadata.js";
export { addAdminService, adminServiceDefinition, createAdminClient, type AdminClient, type AdminServiceOptions } from "./grpc.js";
export { startDashboard, dashboardUiDir, dashboardWebviewHtml, DASHBOARD_CSP, type Dashboard, type DashboardOptions } from "./dashboard.js";
export { AdminActions, ActionError, adminCallerRefusal, isLoopbackPeer, type ActionTarget } from "./actions.js";
/** The kinds of `AdminClient.act` (drain, eject, weight, pause…). */
export { ActionKind } from "../gen/grpcrouter/v1/admin_pb.js";
export { replayCall, REPLAY_OF_KEY } from "./replay.js";
