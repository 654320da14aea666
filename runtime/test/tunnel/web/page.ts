// The script of the test page (bundled with esbuild): a browser app calling the interop
// service through the router with @connectrpc/connect-web, over gRPC-Web or Connect.
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { EchoStatusSchema, TestService } from "../gen/interop/v1/test_pb.js";

type Kind = "grpc-web" | "connect" | "connect-json";

function transport(kind: Kind, baseUrl: string): Transport {
  if (kind === "grpc-web") return createGrpcWebTransport({ baseUrl });
  return createConnectTransport({ baseUrl, useBinaryFormat: kind === "connect" });
}

function describeError(e: unknown) {
  const err = ConnectError.from(e);
  return {
    error: true,
    code: Code[err.code],
    message: err.rawMessage,
    details: err.findDetails(EchoStatusSchema).map((d) => ({ code: d.code, message: d.message })),
  };
}

const ops = {
  async unary(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    let header: Record<string, string> = {};
    let trailer: Record<string, string> = {};
    const res = await client.unaryCall(
      { responseSize: 7, payload: { body: new Uint8Array([1, 2, 3]) } },
      {
        headers: { "x-grpc-test-echo-initial": "from-the-page" },
        onHeader: (h) => (header = Object.fromEntries(h)),
        onTrailer: (t) => (trailer = Object.fromEntries(t)),
      },
    );
    return {
      size: res.payload?.body.length,
      instanceId: res.instanceId,
      echoed: header["x-grpc-test-echo-initial"] ?? trailer["x-grpc-test-echo-initial"] ?? null,
    };
  },
  async tryUnary(kind: Kind, baseUrl: string) {
    try {
      return await ops.unary(kind, baseUrl);
    } catch (e) {
      return describeError(e);
    }
  },
  async stream(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    const sizes: number[] = [];
    for await (const m of client.streamingOutputCall({ responseParameters: [{ size: 3 }, { size: 5 }, { size: 8 }, { size: 0 }] }))
      sizes.push(m.payload?.body.length ?? -1);
    return { sizes };
  },
  async streamError(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    const sizes: number[] = [];
    try {
      for await (const m of client.streamingOutputCall({
        responseParameters: [{ size: 2 }],
        responseStatus: { code: Code.Aborted, message: "stream stopped" },
      }))
        sizes.push(m.payload?.body.length ?? -1);
      return { sizes, error: false };
    } catch (e) {
      return { sizes, ...describeError(e) };
    }
  },
  async errorWithDetails(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    try {
      await client.unaryCall({ responseStatus: create(EchoStatusSchema, { code: Code.NotFound, message: "details: no such thing ✓" }) });
      return { error: false };
    } catch (e) {
      return describeError(e);
    }
  },
  async deadline(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    try {
      // The server sleeps 20 s; the call allows 300 ms.
      await client.unaryCall({ responseSize: -20000 }, { timeoutMs: 300 });
      return { error: false };
    } catch (e) {
      return describeError(e);
    }
  },
  /** connect-web refuses client streaming itself (fetch cannot stream a request body), so the page asks the router with fetch. */
  async clientStreamRaw(kind: Kind, baseUrl: string) {
    const url = `${baseUrl}/interop.v1.TestService/StreamingInputCall`;
    const empty = new Uint8Array(5);
    if (kind === "grpc-web") {
      const res = await fetch(url, { method: "POST", headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" }, body: empty });
      return { status: res.headers.get("grpc-status"), message: decodeURIComponent(res.headers.get("grpc-message") ?? "") };
    }
    const res = await fetch(url, {
      method: "POST",
      headers: { "content-type": kind === "connect" ? "application/connect+proto" : "application/connect+json" },
      body: new Uint8Array(0),
    });
    const body = new Uint8Array(await res.arrayBuffer());
    const end = JSON.parse(new TextDecoder().decode(body.subarray(5))) as { error: { code: string; message: string } };
    return { status: end.error.code, message: end.error.message };
  },
  async bidi(kind: Kind, baseUrl: string) {
    const client = createClient(TestService, transport(kind, baseUrl));
    try {
      await client.streamingInputCall(
        (async function* () {
          yield { payload: { body: new Uint8Array(1) } };
        })(),
      );
      return { error: false };
    } catch (e) {
      return describeError(e);
    }
  },
};

(globalThis as unknown as { ops: typeof ops }).ops = ops;
