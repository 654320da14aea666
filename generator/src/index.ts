// Public API of @grpcrouter/generator, used by the CLI and the language server.
export { compileModule, type CompileModuleOptions, type CompiledModule, type Overlay } from "./compiler/compile.js";
export { findBuf, runBuf, type BufResult, type RunBufOptions } from "./compiler/buf.js";
export { formatDiagnostic, hasErrors, type Diagnostic, type Severity } from "./diagnostics.js";
export {
  generate,
  generateFromDescriptors,
  TUNNEL_CODE_DEFAULT,
  tunnelCodeDefault,
  type GenerateOptions,
  type GenerateResult,
  type GenerateProgress,
  type GeneratePhase,
  type OutputFile,
} from "./generate.js";
export { writeOutputs, checkOutputs, type WriteResult, type CheckResult } from "./outputs.js";
export { GENERATED_MARKER, isGenerated } from "./marker.js";
export {
  routerPlan,
  routerFileName,
  FIRST_METHOD_FIELD,
  ROUTER_CONTROL_FIELDS,
  INSTANCE_CONTROL_FIELDS,
  type RouterPlan,
  type RouterPlanInput,
  type RouterFilePlan,
  type RouterServicePlan,
  type RouterMethodPlan,
  type MethodKind,
  type PreviousRouterProtos,
} from "./phases/router-proto/plan.js";
export type { RoutingKey } from "./phases/router-proto/options.js";
export { phase1Plugin, buildRouterProtos } from "./phases/phase1-router-proto.js";
export { phase3Plugin, emitTypedRouter } from "./phases/phase3-router.js";
export { phase4Plugin, emitServiceBridge } from "./phases/phase4-bridge.js";
export type { TunnelCodeInput } from "./phases/tunnel-code/plugin.js";
export { grpcrouterPlugin } from "./plugin.js";
export { PLUGIN_VERSION } from "./version.js";
