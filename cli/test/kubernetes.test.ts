// The Kubernetes manifests (deploy/kubernetes): every overlay rendered by the real
// `kubectl kustomize`, every object validated against the Kubernetes schemas
// (kubernetes-models), and the router container's own arguments run as the pod would run
// them — its ConfigMaps laid out on disk exactly as the kubelet mounts them (`..data`
// symlink swaps), so the hot reload of the config and the protos is tested as it happens in
// a cluster. No cluster and no container engine run here: the image's entrypoint is the
// same CLI (see cli/test/container.test.ts for the image itself).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, describe, it } from "node:test";
import { parseAllDocuments } from "yaml";
import { createAdminClient } from "@grpcrouter/runtime";
import { startDnsmasq, type Dnsmasq } from "../../scripts/test-support/dnsmasq.mjs";
import { CliProcess, echoClient, echoProtoDir, echoSchemas, freePort, healthOf, repoRoot, startPlainEcho } from "./serve-helpers.js";

const deploy = path.join(repoRoot, "deploy/kubernetes");

// biome-ignore lint/suspicious/noExplicitAny: kubectl renders objects of many kinds; each test reads the fields it knows
type Spec = any;
type Obj = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: Spec;
  data?: Record<string, string>;
};

function render(dir: string): Obj[] {
  const yaml = execFileSync("kubectl", ["kustomize", path.join(deploy, dir)], { encoding: "utf8" });
  return parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
}

/** Kinds outside the core schemas (CRDs); each must be listed here on purpose. */
const CRDS = new Set(["monitoring.coreos.com/v1/ServiceMonitor"]);

async function validate(o: Obj): Promise<void> {
  const key = `${o.apiVersion}/${o.kind}`;
  if (CRDS.has(key)) return;
  const [group, version] = o.apiVersion.includes("/") ? o.apiVersion.split("/") : ["", o.apiVersion];
  const mod = (await import(`kubernetes-models/${group ? `${group}/` : ""}${version}/${o.kind}`)) as Record<string, new (x: unknown) => { validate(): void }>;
  const Model = mod[o.kind];
  assert.ok(Model, `no schema for ${key}`);
  try {
    new Model(o).validate();
  } catch (e) {
    throw new Error(`${key} ${o.metadata.name}: ${(e as Error).message}`);
  }
}

const routerDeployments = (objs: Obj[]) => objs.filter((o) => o.kind === "Deployment" && o.metadata.labels?.["app.kubernetes.io/component"] === "router");

/**
 * A ConfigMap volume as the kubelet writes it: the data in `..<timestamp>/`, `..data`
 * pointing at it, and each top-level entry a symlink through `..data`. `update` swaps
 * `..data` atomically to a new folder, the way a ConfigMap edit reaches a running pod.
 */
class ConfigMapVolume {
  private generation = 0;
  constructor(
    readonly dir: string,
    private readonly items: Array<{ key: string; path: string }> | undefined,
  ) {
    mkdirSync(dir, { recursive: true });
  }

  write(data: Record<string, string>): void {
    const stamp = `..2026_12_06_00_00_${String(this.generation++).padStart(2, "0")}.000000000`;
    const target = path.join(this.dir, stamp);
    const files = this.items ?? Object.keys(data).map((key) => ({ key, path: key }));
    for (const f of files) {
      mkdirSync(path.dirname(path.join(target, f.path)), { recursive: true });
      writeFileSync(path.join(target, f.path), data[f.key] ?? "");
    }
    const old = readdirSync(this.dir).filter((n) => n.startsWith("..2026") && n !== stamp);
    symlinkSync(stamp, path.join(this.dir, "..data_tmp"));
    renameSync(path.join(this.dir, "..data_tmp"), path.join(this.dir, "..data"));
    for (const top of new Set(files.map((f) => f.path.split("/")[0]!))) {
      try {
        symlinkSync(path.join("..data", top), path.join(this.dir, top));
      } catch {
        // already linked through ..data: the swap above changed what it points at
      }
    }
    for (const o of old) rmSync(path.join(this.dir, o), { recursive: true, force: true });
  }
}

describe("Kubernetes manifests", { timeout: 240_000 }, () => {
  const work = mkdtempSync(path.join(tmpdir(), "grpcrouter-k8s-"));
  const running: CliProcess[] = [];
  after(async () => {
    for (const p of running) await p.stop(2_000).catch(() => {});
    rmSync(work, { recursive: true, force: true });
  });

  it("every overlay renders with kubectl kustomize and every object passes the Kubernetes schemas", async () => {
    for (const dir of ["overlays/single", "overlays/three-zones", "examples/sidecar"]) {
      const objs = render(dir);
      assert.ok(objs.length > 0, dir);
      for (const o of objs) await validate(o);
      for (const o of objs)
        if (o.kind !== "Namespace") assert.equal(o.metadata.namespace, "grpcrouter", `${dir}: ${o.kind} ${o.metadata.name} in the namespace`);
    }
    const single = render("overlays/single");
    assert.deepEqual(single.map((o) => `${o.kind}/${o.metadata.name}`).sort(), [
      "ConfigMap/grpcrouter-config",
      "ConfigMap/grpcrouter-protos",
      "Deployment/grpcrouter",
      "Namespace/grpcrouter",
      "PodDisruptionBudget/grpcrouter",
      "Service/grpcrouter",
      "Service/grpcrouter-headless",
      "Service/grpcrouter-metrics",
    ]);
    const three = render("overlays/three-zones");
    const zones = routerDeployments(three);
    assert.deepEqual(zones.map((d) => d.metadata.name).sort(), ["grpcrouter-zone-a", "grpcrouter-zone-b", "grpcrouter-zone-c"]);
    for (const d of zones) {
      const zone = d.metadata.name.replace("grpcrouter-", "");
      const c = d.spec.template.spec.containers[0];
      assert.deepEqual(c.env, [{ name: "GRPCROUTER_ZONE", value: zone }], `${d.metadata.name} knows its zone`);
      assert.deepEqual(
        d.spec.template.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values,
        [zone],
      );
      assert.ok(c.args.includes("--tls-cert"), "TLS from the Secret");
      const hpa = three.find((o) => o.kind === "HorizontalPodAutoscaler" && o.spec.scaleTargetRef.name === d.metadata.name);
      assert.ok(hpa, `an HPA scales ${d.metadata.name}`);
    }
    const headless = three.find((o) => o.kind === "Service" && o.metadata.name === "grpcrouter-headless")!;
    assert.equal(headless.spec.clusterIP, "None");
    // Every zone's pods are behind both Services (the selectors do not carry the zone).
    for (const d of zones)
      for (const [k, v] of Object.entries(headless.spec.selector as Record<string, string>)) assert.equal(d.spec.template.metadata.labels[k], v);
    assert.ok(three.some((o) => o.kind === "ServiceMonitor"));
  });

  it("ships the example's proto module, unchanged (a ConfigMap cannot read files outside its folder)", () => {
    for (const f of ["buf.yaml", "demo/v1/echo.proto"]) {
      assert.equal(
        readFileSync(path.join(deploy, "base/shared/protos", f), "utf8"),
        readFileSync(path.join(repoRoot, "examples/echo/proto", f), "utf8"),
        `${f} differs from examples/echo/proto`,
      );
    }
  });

  it("probes, Services and ports agree with what the router listens on", () => {
    for (const dir of ["overlays/single", "overlays/three-zones"]) {
      const objs = render(dir);
      for (const d of routerDeployments(objs)) {
        const c = d.spec.template.spec.containers[0];
        const port = (flag: string) => Number(c.args[c.args.indexOf(flag) + 1]);
        const named = Object.fromEntries(c.ports.map((p: { name: string; containerPort: number }) => [p.name, p.containerPort]));
        assert.equal(named.grpc, port("--port"));
        assert.equal(named.metrics, port("--metrics-port"));
        assert.equal(c.readinessProbe.grpc.port, port("--port"), "readiness on grpc.health.v1 at the router's port");
        assert.equal(c.livenessProbe.grpc.port, port("--port"));
        const mounts = new Map<string, string>(c.volumeMounts.map((m: { name: string; mountPath: string }) => [m.mountPath, m.name]));
        assert.equal(mounts.get(c.args[c.args.indexOf("--root") + 1]), "protos");
        assert.equal(mounts.get(path.dirname(c.args[c.args.indexOf("--config") + 1])), "config");
        assert.ok(!c.volumeMounts.some((m: { subPath?: string }) => m.subPath), "no subPath: the kubelet would never update it");
      }
      for (const s of objs.filter((o) => o.kind === "Service")) {
        for (const p of s.spec.ports) assert.ok(["grpc", "metrics"].includes(p.targetPort), `${s.metadata.name} targets a named container port`);
      }
    }
  });

  /** Runs a router Deployment's container as the kubelet would, with its ConfigMaps on disk. */
  async function runRouterPod(objs: Obj[], deployment: Obj, name: string) {
    const c = deployment.spec.template.spec.containers[0];
    const cm = (n: string) => objs.find((o) => o.kind === "ConfigMap" && o.metadata.name === n)!.data!;
    const volumes = deployment.spec.template.spec.volumes as Array<{
      name: string;
      configMap?: { name: string; items?: Array<{ key: string; path: string }> };
    }>;
    const host = path.join(work, name);
    const mountDirs = new Map<string, string>();
    const volumeOf = new Map<string, ConfigMapVolume>();
    for (const m of c.volumeMounts as Array<{ name: string; mountPath: string }>) {
      const dir = path.join(host, m.name);
      mountDirs.set(m.mountPath, dir);
      const v = volumes.find((x) => x.name === m.name)!;
      if (v.configMap) {
        const vol = new ConfigMapVolume(dir, v.configMap.items);
        vol.write(cm(v.configMap.name));
        volumeOf.set(m.name, vol);
      } else mkdirSync(dir, { recursive: true });
    }
    const port = await freePort();
    const metricsPort = await freePort();
    // The pod's paths become the host folders; 0.0.0.0 becomes loopback (tests use 127.x only).
    const args = (c.args as string[]).map((a, i, all) => {
      if (all[i - 1] === "--port") return String(port);
      if (all[i - 1] === "--metrics-port") return String(metricsPort);
      if (a === "0.0.0.0") return "127.0.0.1";
      for (const [mount, dir] of mountDirs) if (a === mount || a.startsWith(mount + "/")) return dir + a.slice(mount.length);
      return a;
    });
    const env = Object.fromEntries((c.env ?? []).map((e: { name: string; value: string }) => [e.name, e.value]));
    const proc = new CliProcess(args, host, env);
    running.push(proc);
    const address = `127.0.0.1:${port}`;
    await proc.waitFor(/listening|serving|router on/i, "the router to start");
    return { proc, address, metricsPort, volumeOf, cm };
  }

  it("the single router's container runs as the pod would, answers its probes, and hot-reloads ConfigMap updates", async () => {
    const objs = render("overlays/single");
    const [deployment] = routerDeployments(objs);
    const pod = await runRouterPod(objs, deployment!, "single");
    assert.equal(await healthOf(pod.address), "SERVING", "readiness/liveness: grpc.health.v1 SERVING");
    const metrics = await fetch(`http://127.0.0.1:${pod.metricsPort}/metrics`).then((r) => r.text());
    assert.match(metrics, /grpc_server_started_total|process_cpu/);

    // An edited config ConfigMap: the kubelet swaps ..data; the router re-applies it.
    const config = JSON.parse(pod.cm("grpcrouter-config")["router.json"]!) as { services: Record<string, Record<string, unknown>> };
    config.services["*"]!.balancer = "round_robin";
    pod.volumeOf.get("config")!.write({ "router.json": JSON.stringify(config) });
    await pod.proc.waitFor(/config reloaded from .*router\.json/, "the config reload");

    // A bad edit is reported and the running settings stay.
    pod.volumeOf.get("config")!.write({ "router.json": '{"services": {"*": {"balancer": "nope"}}}' });
    await pod.proc.waitFor(/config reload failed/, "the refused config");

    // An edited protos ConfigMap: a new method; the service is reloaded in place.
    const protos = { ...pod.cm("grpcrouter-protos") };
    protos["demo.v1.echo.proto"] = protos["demo.v1.echo.proto"]!.replace("service Echo {", "service Echo {\n  rpc Ping(SayRequest) returns (SayResponse);");
    pod.volumeOf.get("protos")!.write(protos);
    await pod.proc.waitFor(/reloaded: .*changed demo\.v1\.Echo/, "the proto reload");
    assert.equal(await healthOf(pod.address), "SERVING");
  });

  it("the sidecar example's bridge container runs with its own arguments against a real router and target", async () => {
    const pod = render("examples/sidecar").find((o) => o.kind === "Deployment")!.spec.template.spec;
    const c = pod.containers.find((x: { name: string }) => x.name === "grpcrouter-bridge");
    const app = pod.containers.find((x: { name: string }) => x.name !== "grpcrouter-bridge");
    // The service container listens where the bridge's --target says (inside the pod: its loopback).
    const target = c.args[c.args.indexOf("--target") + 1] as string;
    assert.equal(target, app.args[app.args.indexOf("--listen") + 1], "--target is where the service container listens");
    const routerTarget = c.args[c.args.indexOf("--router") + 1] as string;
    const m = /^dns:\/\/\/([^:/]+):(\d+)$/.exec(routerTarget);
    assert.ok(m, `--router resolves the headless Service: ${routerTarget}`);
    const [, headless, routerPort] = m;
    const service = render("overlays/single").find((o) => o.kind === "Service" && o.spec?.clusterIP === "None")!;
    assert.equal(headless, `${service.metadata.name}.${service.metadata.namespace}.svc.cluster.local`, "the name is the routers' headless Service");
    assert.ok(
      service.spec.ports.some((p: { port: number }) => p.port === Number(routerPort)),
      "on its port",
    );

    // The pod: the protos ConfigMap at /proto as the kubelet mounts it, /tmp an emptyDir, the
    // downward API's pod name, and $(VAR) in args expanded from the container's env as the
    // kubelet does. The service container is a plain grpc-js Echo server; the router a real
    // `grpcrouter serve` of the same module; cluster DNS a real dnsmasq answering the name.
    const host = path.join(work, "sidecar");
    const protosVolume = pod.volumes.find((v: { name: string }) => v.name === "protos");
    const protos = render("overlays/single").find((o) => o.kind === "ConfigMap" && o.metadata.name === protosVolume.configMap.name)!.data!;
    const mounts = new Map<string, string>();
    for (const vm of c.volumeMounts as Array<{ name: string; mountPath: string }>) {
      const dir = path.join(host, vm.name);
      const v = pod.volumes.find((x: { name: string }) => x.name === vm.name);
      if (v.configMap) new ConfigMapVolume(dir, v.configMap.items).write(protos);
      else mkdirSync(dir, { recursive: true });
      mounts.set(vm.mountPath, dir);
    }
    const schemas = await echoSchemas(echoProtoDir);
    const echo = await startPlainEcho(schemas, "echo-pod");
    const routerHost = "127.0.0.6";
    const port = await freePort(routerHost);
    const serve = new CliProcess(
      ["serve", "--root", echoProtoDir, "--out", path.join(host, "router-gen"), "--host", routerHost, "--port", String(port), "--no-dashboard"],
      host,
    );
    running.push(serve);
    await serve.waitFor(/listening/, "the router");
    const dns: Dnsmasq = await startDnsmasq({ [headless!]: [routerHost] });
    try {
      const env: Record<string, string> = { POD_NAME: "echo-5d9c7b8f6-x2x7q" };
      for (const e of c.env as Array<{ name: string; value?: string }>) if (e.value !== undefined) env[e.name] = e.value;
      const args = (c.args as string[]).map((a) => {
        // Pod-network addresses become this machine's: the service's port, the DNS server and router port.
        if (a === target) return echo.address;
        if (a === routerTarget) return `dns://${dns.server}/${headless}:${port}`;
        for (const [mount, dir] of mounts) if (a === mount || a.startsWith(mount + "/")) return dir + a.slice(mount.length);
        return a.replace(/\$\((\w+)\)/g, (_, name: string) => env[name] ?? "");
      });
      const bridge = new CliProcess(args, host, env);
      running.push(bridge);
      await serve.waitFor(/registered instance "echo-5d9c7b8f6-x2x7q" of demo\.v1\.Echo/, "the sidecar's registration");
      assert.equal(await healthOf(`${routerHost}:${port}`, "demo.v1.Echo"), "SERVING");
      const client = echoClient(`${routerHost}:${port}`, schemas);
      try {
        const { res, headers } = await client.say("through the sidecar");
        assert.equal(res.text, "through the sidecar");
        assert.equal(headers.get("x-served-by")[0], "echo-pod", "answered by the service container");
      } finally {
        client.close();
      }
      const admin = createAdminClient(`${routerHost}:${port}`);
      try {
        const [inst] = (await admin.getSnapshot()).instances;
        assert.equal(inst?.id, "echo-5d9c7b8f6-x2x7q", "--id $(POD_NAME)");
        assert.deepEqual(inst?.labels, { zone: "zone-a" }, "--label zone=$(ZONE)");
      } finally {
        admin.close();
      }
      assert.equal(await bridge.stop(5_000), 0);
    } finally {
      await dns.stop();
      await echo.close();
    }
  });

  it("a router of the three-zones overlay runs with its zone and the locality config", async () => {
    const objs = render("overlays/three-zones");
    const deployment = routerDeployments(objs).find((d) => d.metadata.name === "grpcrouter-zone-b")!;
    // Without the Secret's certificate the TLS flags cannot be honoured here: run the same
    // container without them (the TLS flags themselves are tested in cli/test/tls.test.ts).
    const c = deployment.spec.template.spec.containers[0];
    const i = c.args.indexOf("--tls-cert");
    c.args.splice(i, 4);
    c.volumeMounts = c.volumeMounts.filter((m: { name: string }) => m.name !== "tls");
    const pod = await runRouterPod(objs, deployment, "zone-b");
    assert.equal(await healthOf(pod.address), "SERVING");
    assert.doesNotMatch(pod.proc.stderr + pod.proc.stdout, /config.*(error|failed)/i, "the locality config is valid");
  });
});
