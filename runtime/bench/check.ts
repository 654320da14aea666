// One real gRPC call (grpc-js) through a path before it is loaded: h2load counts HTTP 200s,
// and a gRPC error (UNIMPLEMENTED, UNAVAILABLE, …) is an HTTP 200 too. A path whose call does
// not end with grpc-status OK, or answers the wrong number of messages, fails loudly.
import * as grpc from "@grpc/grpc-js";

const identity = (b: Buffer) => b;

export class PathCheckError extends Error {}

function withClient<T>(target: string, use: (c: grpc.Client) => Promise<T>): Promise<T> {
  const client = new grpc.Client(target, grpc.credentials.createInsecure());
  return use(client).finally(() => client.close());
}

/** A unary call of `method` with `request`; resolves with the response bytes if the status is OK. */
export function unaryCall(client: grpc.Client, method: string, request: Buffer, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(method, identity, identity, request, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (err, res) =>
      err ? reject(new PathCheckError(`${method}: ${grpc.status[err.code] ?? err.code} ${err.details}`)) : resolve(res!),
    );
  });
}

/** Checks that `method` answers one OK unary call through `target`. */
export function checkUnary(target: string, method: string, request: Buffer = Buffer.alloc(0)): Promise<void> {
  return withClient(target, async (c) => {
    await unaryCall(c, method, request);
  });
}

/** Checks that `method` streams exactly `messages` messages and ends with OK through `target`. */
export function checkServerStream(target: string, method: string, messages: number, request: Buffer = Buffer.alloc(0)): Promise<void> {
  return withClient(
    target,
    (c) =>
      new Promise<void>((resolve, reject) => {
        const call = c.makeServerStreamRequest(method, identity, identity, request, new grpc.Metadata(), { deadline: Date.now() + 10_000 });
        let n = 0;
        call.on("data", () => n++);
        call.on("error", (e: grpc.ServiceError) => reject(new PathCheckError(`${method}: ${grpc.status[e.code] ?? e.code} ${e.details}`)));
        call.on("status", (s: grpc.StatusObject) => {
          if (s.code !== grpc.status.OK) return; // 'error' reports it
          if (n === messages) resolve();
          else reject(new PathCheckError(`${method}: ${n} messages instead of ${messages}`));
        });
      }),
  );
}
