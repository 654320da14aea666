// `grpcrouter serve` with TLS and an instance token file, and `grpcrouter bridge` dialling it
// with TLS and a token and forwarding to a TLS target, all as real processes; a bridge with
// a wrong token exits with the router's reason; bad TLS/token input fails in one line that
// names the file. Certificates come from runtime/test/auth/make-certs.sh (openssl).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, describe, it } from "node:test";
import * as grpc from "@grpc/grpc-js";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { runCli } from "./run-cli.js";
import { cli, echoProtoDir, echoSchemas, repoRoot, type CliProcess } from "./serve-helpers.js";

type Schemas = Awaited<ReturnType<typeof echoSchemas>>;
type Json = Record<string, unknown>;

/** A grpc-js Echo server (Say only) listening with TLS: the bridge's --target-tls. */
async function startTlsEcho(schemas: Schemas, credentials: grpc.ServerCredentials): Promise<{ port: number; server: grpc.Server }> {
  const req = schemas.message("SayRequest");
  const res = schemas.message("SayResponse");
  const server = new grpc.Server();
  server.addService(
    {
      Say: {
        path: "/demo.v1.Echo/Say",
        requestStream: false,
        responseStream: false,
        requestDeserialize: (b: Buffer) => fromBinary(req, b),
        requestSerialize: (m: Json) => Buffer.from(toBinary(req, create(req, m))),
        responseSerialize: (m: Json) => Buffer.from(toBinary(res, create(res, m))),
        responseDeserialize: (b: Buffer) => fromBinary(res, b),
      },
    } as grpc.ServiceDefinition,
    {
      Say: (call: grpc.ServerUnaryCall<Json, Json>, cb: grpc.sendUnaryData<Json>) =>
        cb(null, { text: `tls:${call.request.text as string}`, instanceId: "tls-target" }),
    },
  );
  const port = await new Promise<number>((resolve, reject) => server.bindAsync("127.0.0.1:0", credentials, (e, p) => (e ? reject(e) : resolve(p))));
  return { port, server };
}

function say(target: string, schemas: Schemas, credentials: grpc.ChannelCredentials, text: string): Promise<Json> {
  const client = new grpc.Client(target, credentials);
  const req = schemas.message("SayRequest");
  const res = schemas.message("SayResponse");
  return new Promise<Json>((resolve, reject) =>
    client.makeUnaryRequest(
      "/demo.v1.Echo/Say",
      (m: Json) => Buffer.from(toBinary(req, create(req, m))),
      (b: Buffer) => fromBinary(res, b) as unknown as Json,
      { text },
      new grpc.Metadata(),
      { deadline: new Date(Date.now() + 30_000) },
      (e, r) => (e ? reject(e) : resolve(r!)),
    ),
  ).finally(() => client.close());
}

/** `grpcrouter serve` with the test CA's server certificate (more options follow). */
const tlsServe = ["serve", "--root", "proto", "--port", "0", "--no-dashboard", "--no-watch", "--tls-cert", "server.pem", "--tls-key", "server.key"];

describe("grpcrouter serve/bridge with TLS and tokens", { timeout: 240_000 }, () => {
  let tmp: string;
  let schemas: Schemas;
  let serve: CliProcess;
  let bridge: CliProcess | undefined;
  let target: Awaited<ReturnType<typeof startTlsEcho>>;
  let router = "";
  const f = (name: string) => path.join(tmp, name);
  const caPem = () => readFileSync(f("ca.pem"));

  before(async () => {
    tmp = mkdtempSync(path.join(os.tmpdir(), "grpcrouter-cli-tls-"));
    execFileSync("bash", [path.join(repoRoot, "runtime/test/auth/make-certs.sh"), tmp]);
    cpSync(echoProtoDir, f("proto"), { recursive: true });
    writeFileSync(f("tokens.txt"), "# who may register\ndemo.v1.Echo echo-token\n");
    writeFileSync(f("secret"), "echo-token\n");
    schemas = await echoSchemas(f("proto"));
    target = await startTlsEcho(
      schemas,
      grpc.ServerCredentials.createSsl(null, [{ cert_chain: readFileSync(f("server.pem")), private_key: readFileSync(f("server.key")) }]),
    );
    serve = cli([...tlsServe, "--token-file", "tokens.txt"], tmp);
    const port = (await serve.waitFor(/router listening on \S+:(\d+)/, "the router address"))[1]!;
    // By name: the certificate is for localhost, and TLS server names are not IP addresses.
    router = `localhost:${port}`;
    await serve.waitFor(/security: TLS, instances need one of 1 token\n/, "the security summary");
  });

  after(async () => {
    await bridge?.stop();
    await serve?.stop();
    target?.server.forceShutdown();
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it("routes a TLS client's call through a TLS bridge with a token to a TLS target", async () => {
    bridge = cli(
      [
        "bridge",
        "--root",
        "proto",
        "--router",
        router,
        "--router-ca",
        "ca.pem",
        "--token-file",
        "secret",
        "--target",
        `localhost:${target.port}`,
        "--target-ca",
        "ca.pem",
        "--id",
        "tls-sidecar",
      ],
      tmp,
    );
    await bridge.waitFor(/tls-sidecar registered demo\.v1\.Echo/, "the bridge to register");
    const res = await say(router, schemas, grpc.credentials.createSsl(caPem()), "hi");
    assert.equal(res.text, "tls:hi");
    assert.equal(res.instanceId, "tls-target");
  });

  it("fails a plaintext client of the TLS router", async () => {
    const err = (await say(router, schemas, grpc.credentials.createInsecure(), "hi").catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
    assert.equal(err.code, grpc.status.UNAVAILABLE);
  });

  it("ends a bridge with a wrong token with exit code 1 and the router's reason", async () => {
    const intruder = cli(
      [
        "bridge",
        "--root",
        "proto",
        "--router",
        router,
        "--router-tls",
        "--router-ca",
        "ca.pem",
        "--token",
        "guess",
        "--target",
        `localhost:${target.port}`,
        "--id",
        "intruder",
      ],
      tmp,
    );
    const code = await Promise.race([intruder.exited, new Promise<"running">((r) => setTimeout(() => r("running"), 60_000))]);
    if (code === "running") await intruder.stop();
    assert.equal(code, 1, intruder.output);
    assert.match(
      intruder.stderr,
      /grpcrouter bridge: router localhost:\d+ refused instance intruder of demo\.v1\.Echo: not authorized: the token is not valid for demo\.v1\.Echo\n/,
    );
    assert.doesNotMatch(intruder.output, /registered demo/);
    await serve.waitFor(/refused instance "intruder" of demo\.v1\.Echo .*not authorized/, "the router to log the refusal");
  });

  it("takes a token added to the token file without a restart", async () => {
    writeFileSync(f("tokens.txt"), "# who may register\ndemo.v1.Echo echo-token\nlate-token\n");
    const late = cli(
      [
        "bridge",
        "--root",
        "proto",
        "--router",
        router,
        "--router-ca",
        "ca.pem",
        "--token",
        "late-token",
        "--target",
        `localhost:${target.port}`,
        "--target-tls",
        "--target-ca",
        "ca.pem",
        "--id",
        "late",
      ],
      tmp,
    );
    try {
      await late.waitFor(/late registered demo\.v1\.Echo/, "the bridge with the new token to register");
      await serve.waitFor(/token file \S+tokens\.txt changed: 2 tokens now/, "the router to log the reload");
    } finally {
      assert.equal(await late.stop(), 0);
    }
  });

  it("with --tls-client-ca admits a bridge and a client only with a certificate of that CA", async () => {
    const mserve = cli([...tlsServe, "--tls-client-ca", "ca.pem"], tmp);
    let mbridge: CliProcess | undefined;
    try {
      const port = (await mserve.waitFor(/router listening on \S+:(\d+)/, "the mTLS router address"))[1]!;
      await mserve.waitFor(/security: TLS, client certificates required\n/, "the security summary");
      const mrouter = `localhost:${port}`;
      mbridge = cli(
        [
          "bridge",
          "--root",
          "proto",
          "--router",
          mrouter,
          "--router-ca",
          "ca.pem",
          "--router-cert",
          "client.pem",
          "--router-key",
          "client.key",
          "--target",
          `localhost:${target.port}`,
          "--target-ca",
          "ca.pem",
          "--id",
          "mtls-sidecar",
        ],
        tmp,
      );
      await mbridge.waitFor(/mtls-sidecar registered demo\.v1\.Echo/, "the mTLS bridge to register");
      const withCert = grpc.credentials.createSsl(caPem(), readFileSync(f("client.key")), readFileSync(f("client.pem")));
      assert.equal((await say(mrouter, schemas, withCert, "m")).text, "tls:m");
      const err = (await say(mrouter, schemas, grpc.credentials.createSsl(caPem()), "m").catch((e: grpc.ServiceError) => e)) as grpc.ServiceError;
      assert.equal(err.code, grpc.status.UNAVAILABLE);
    } finally {
      await mbridge?.stop();
      await mserve.stop();
    }
  });

  it("names the file or option in one line when TLS or token input is bad", async () => {
    writeFileSync(f("bad-tokens.txt"), "ok-token\ndemo.v1.Echo a b\n");
    const cases: Array<[string[], number, string]> = [
      [
        ["serve", "--root", "proto", "--tls-cert", "missing.pem", "--tls-key", "server.key"],
        1,
        `grpcrouter serve: --tls-cert ${f("missing.pem")}: cannot read it: no such file\n`,
      ],
      [
        ["serve", "--root", "proto", "--tls-cert", "server.pem", "--tls-key", "ca.pem"],
        1,
        `grpcrouter serve: --tls-key ${f("ca.pem")}: not a PEM private key (an encrypted key is not supported)\n`,
      ],
      [
        ["serve", "--root", "proto", "--tls-cert", "server.pem", "--tls-key", "client.key"],
        1,
        `grpcrouter serve: --tls-key ${f("client.key")} is not the key of --tls-cert ${f("server.pem")}\n`,
      ],
      [
        ["serve", "--root", "proto", "--tls-cert", "server.pem", "--tls-key", "server.key", "--token-file", "bad-tokens.txt"],
        1,
        `grpcrouter serve: ${f("bad-tokens.txt")}:2: expected "TOKEN" or "SERVICE TOKEN", found 3 words\n`,
      ],
      [["serve", "--root", "proto", "--token-file", "nope.txt"], 1, `grpcrouter serve: cannot read the token file ${f("nope.txt")}: no such file\n`],
      [
        ["bridge", "--root", "proto", "--router", "localhost:1", "--target", "localhost:2", "--router-ca", "nope.pem"],
        1,
        `grpcrouter bridge: --router-ca ${f("nope.pem")}: cannot read it: no such file\n`,
      ],
      [
        ["bridge", "--root", "proto", "--router", "localhost:1", "--target", "localhost:2", "--target-ca", "tokens.txt"],
        1,
        `grpcrouter bridge: --target-ca ${f("tokens.txt")}: not a PEM certificate\n`,
      ],
      [
        ["bridge", "--root", "proto", "--router", "localhost:1", "--target", "localhost:2", "--token-file", "nope"],
        1,
        `grpcrouter bridge: cannot read the token file ${f("nope")}: no such file\n`,
      ],
    ];
    // Two at a time: each is a process that exits at once.
    for (let i = 0; i < cases.length; i += 2) {
      const batch = cases.slice(i, i + 2);
      const results = await Promise.all(batch.map(([args]) => runCli(args, tmp)));
      batch.forEach(([args, code, stderr], j) => {
        assert.equal(results[j]!.stderr, stderr, args.join(" "));
        assert.equal(results[j]!.code, code, args.join(" "));
      });
    }
    const usage = await runCli(["serve", "--root", "proto", "--tls-cert", "server.pem"], tmp);
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^grpcrouter serve: --tls-cert needs --tls-key \(usage: /);
    const both = await runCli(["bridge", "--router", "localhost:1", "--target", "localhost:2", "--token", "a", "--token-file", "secret"], tmp);
    assert.equal(both.code, 2);
    assert.match(both.stderr, /^grpcrouter bridge: give --token or --token-file, not both/);
  });
});
