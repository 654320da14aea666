// The tunnel: frame codec, router, bridge.
export { FrameError } from "./wire.js";
export { FrameEncoder, decodeFrames, decodeControl, RouterFrame, InstanceFrame, FIRST_METHOD_FIELD, type Frame } from "./frames.js";
export { FrameSender } from "./sender.js";
export { defineTunnel, type TunnelSpec } from "./spec.js";
export {
  createRouter,
  type Router,
  type RouterOptions,
  type RouterServiceOptions,
  type RouterStats,
  type RoutingKeyHook,
  type ServiceSettings,
} from "./router/router.js";
export { RateLimiter, RateLimitConfigError, parseRateLimits, type RateLimit, type RateLimitOptions } from "./rate-limit.js";
export type { InstanceView } from "./router/router-registry.js";
export type { HelloInfo } from "./router/router-context.js";
export { GrpcServer, type GrpcMethod, type GrpcServerOptions, type ServerTls } from "./http2/server.js";
export type { ServerCall, CallListener, CallTransport } from "./http2/server-call.js";
export { parseCorsOptions, type CorsOptions } from "./http2/web-cors.js"; // grpc-web
export { peerCertificateOf, peerCertificateFromSocket, type PeerCertificateInfo } from "./peer-certificate.js";
export { BridgeRefusedError, createRawBridge, type Bridge, type BridgeOptions, type BridgeUpdate } from "./bridge/raw-bridge.js";
export {
  CallError,
  finishCall,
  onCallAbort,
  pipeRequests,
  requestMetadata,
  sendResponse,
  type RawCall,
  type RawHandler,
  type RawStatus,
  type RequestSink,
} from "./bridge/bridge-call.js";
export { createBridge, connectHandler, type ConnectBridgeOptions } from "./bridge/bridge.js";
export { backoffDelay, type BackoffOptions } from "./backoff.js";
export { ANONYMOUS_PRINCIPAL, InstanceClaims, idMatches, principalOf } from "./instance-identity.js";
export { DEFAULT_MAX_MESSAGE_BYTES, FRAME_OVERHEAD_BYTES, registerReceiveLimit } from "./message-limits.js";
export { RegistrationLimits, type RegistrationLimitOptions } from "./registration-limits.js";
export { Http2Channel, DialError, type Http2ChannelOptions } from "./bridge/http2-channel.js";
export { GrpcClientStream, type GrpcCallListener, type GrpcCallOptions } from "./bridge/grpc-client-stream.js";
export { parseProxyUrl } from "./bridge/proxy.js";
export { TRANSPORT_MODES, type TransportMode } from "./bridge/transport.js";
