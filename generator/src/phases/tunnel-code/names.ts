// The TypeScript names phases 3 and 4 export for each service of a file. Both phases compute
// them the same way (the bridge imports the router file's tunnel constant by name). Names
// are unique within the file: two services whose names differ only in the case of the first
// letter (or that produce the same identifier otherwise) get a numeric suffix, in service order.
import type { DescFile, DescService } from "@bufbuild/protobuf";
import { safeIdentifier } from "@bufbuild/protoplugin";

export interface ServiceTsNames {
  /** `EchoTunnel`: the defineTunnel constant. */
  tunnel: string;
  /** `EchoRoutingKeys`: the per-method hook interface. */
  routingKeys: string;
  /** `EchoRouterOptions`: options of createEchoRouter. */
  routerOptions: string;
  /** `echoRouterService`: the RouterServiceOptions of the service, for a router of several services. */
  routerService: string;
  /** `createEchoRouter`. */
  createRouter: string;
  /** `createEchoBridge`. */
  createBridge: string;
}

const upperFirst = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const lowerFirst = (s: string) => s.charAt(0).toLowerCase() + s.slice(1);

export function serviceTsNames(file: DescFile): Map<DescService, ServiceTsNames> {
  const taken = new Set<string>();
  const out = new Map<DescService, ServiceTsNames>();
  for (const service of file.services) {
    const base = upperFirst(service.name);
    let names: ServiceTsNames | undefined;
    for (let i = 1; !names; i++) {
      const b = i === 1 ? base : `${base}${i}`;
      const candidate: ServiceTsNames = {
        tunnel: safeIdentifier(`${b}Tunnel`),
        routingKeys: safeIdentifier(`${b}RoutingKeys`),
        routerOptions: safeIdentifier(`${b}RouterOptions`),
        routerService: safeIdentifier(`${lowerFirst(b)}RouterService`),
        createRouter: safeIdentifier(`create${b}Router`),
        createBridge: safeIdentifier(`create${b}Bridge`),
      };
      if (Object.values(candidate).every((n) => !taken.has(n))) names = candidate;
    }
    for (const n of Object.values(names)) taken.add(n);
    out.set(service, names);
  }
  return out;
}

/** `demo/v1/echo.proto` → `./demo/v1/echo_router.js` (protoplugin makes it relative). */
export function routerModule(file: DescFile): string {
  return `./${file.name}_router.js`;
}
