// The frame numbers and schemas the attack instances write, in one place.
import { TrailersSchema } from "../../src/gen/grpcrouter/v1/tunnel_pb.js";
import { InstanceFrame } from "../../src/tunnel/index.js";
export { FrameEncoder } from "../../src/tunnel/index.js";
export const TunnelFrames = { Trailers: InstanceFrame.Trailers, TrailersSchema } as const;
