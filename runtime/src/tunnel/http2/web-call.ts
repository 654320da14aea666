// One gRPC-Web or Connect call, over HTTP/1.1 or HTTP/2, as the router's ServerCall: the
// router balances, limits, meters and tunnels it exactly like a native gRPC call. Binary
// payloads stay bytes (sliced out of the request, framed into the response); Connect JSON
// is converted here with the method's descriptors.
import { peerOf } from "./server-call.js";
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Readable } from "node:stream";
import type { Socket } from "node:net";
import type { TLSSocket } from "node:tls";
import { fromBinary, fromJson, toBinary, toJson, type DescMethod, type JsonValue } from "@bufbuild/protobuf";
import * as grpc from "@grpc/grpc-js";
import { peerCertificateFromSocket, type PeerCertificateInfo } from "../peer-certificate.js";
import { GrpcWireError, headersFromMetadata, MessageReader } from "./grpc-wire.js";
import type { CallListener, ServerCall } from "./server-call.js";
import {
  Base64Decoder,
  Base64Encoder,
  connectErrorJson,
  connectHttpStatus,
  envelope,
  grpcWebTrailerFrame,
  metadataJson,
  type WebProtocol,
} from "./web-protocol.js";

/** One HTTP request/response, whether it came over HTTP/1.1 or as an HTTP/2 stream. */
export interface WebExchange {
  readonly headers: IncomingHttpHeaders;
  readonly rawHeaders: string[];
  /** The request body. */
  readonly body: Readable;
  readonly socket: Socket | undefined;
  respond(status: number, headers: OutgoingHttpHeaders): void;
  write(chunk: Buffer | string, cb?: () => void): boolean;
  end(chunk?: Buffer | string): void;
  readonly needDrain: boolean;
  /** Runs once when the response can take more or the exchange is over. */
  onDrainOrClose(fn: () => void): void;
  /** Runs once when the exchange closes; `finished` is false when it closed before the response ended. */
  onClose(fn: (finished: boolean) => void): void;
  readonly closed: boolean;
}

export class WebServerCall implements ServerCall {
  private listener: CallListener | undefined;
  private reading = false;
  private headersSent = false;
  private done = false;
  private paused = false;
  private headerMetadata: grpc.Metadata | undefined;
  /** Connect unary: the response message waits for the status. */
  private unaryResponse: Buffer | undefined;
  private readonly textOut: Base64Encoder | undefined;

  constructor(
    private readonly ex: WebExchange,
    private readonly protocol: WebProtocol,
    readonly path: string,
    readonly metadata: grpc.Metadata,
    readonly deadline: number,
    private readonly maxRequestBytes: number,
    /** Needed for Connect JSON; undefined when the server was not given descriptors. */
    private readonly desc: DescMethod | undefined,
    /** Headers every response carries (CORS). */
    private readonly extraHeaders: Record<string, string>,
  ) {
    this.textOut = protocol.kind === "grpc-web" && protocol.text ? new Base64Encoder() : undefined;
    ex.onClose((finished) => {
      if (this.done) return;
      this.done = true;
      if (!finished) this.listener?.cancel();
    });
  }

  get ended(): boolean {
    return this.done;
  }

  get peer(): string {
    const s = this.ex.socket;
    return peerOf(s);
  }

  peerCertificate(): PeerCertificateInfo | undefined {
    const s = this.ex.socket as TLSSocket | undefined;
    return s && typeof s.getPeerCertificate === "function" ? peerCertificateFromSocket(s) : undefined;
  }

  listen(listener: CallListener): void {
    this.listener = listener;
    if (this.reading) return;
    this.reading = true;
    const body = this.ex.body;
    const deliver = (m: Buffer) => {
      if (!this.done) this.listener!.message(m);
    };
    let push: (chunk: Buffer) => void;
    let partial: () => boolean;
    if (this.protocol.kind === "connect-unary") {
      // The whole body is the message (no envelope).
      const parts: Buffer[] = [];
      let size = 0;
      push = (chunk) => {
        size += chunk.length;
        if (size > this.maxRequestBytes)
          throw new GrpcWireError(grpc.status.RESOURCE_EXHAUSTED, `Received message larger than max (${size} vs. ${this.maxRequestBytes})`);
        parts.push(chunk);
      };
      partial = () => false;
      body.on("end", () => {
        if (this.done) return;
        try {
          deliver(this.requestMessage(Buffer.concat(parts, size)));
        } catch (e) {
          return this.failRead(e);
        }
      });
    } else {
      const reader = new MessageReader(this.maxRequestBytes, (m) => deliver(this.protocol.kind === "connect-stream" ? this.requestMessage(m) : m));
      const text = this.protocol.kind === "grpc-web" && this.protocol.text ? new Base64Decoder() : undefined;
      push = text ? (chunk) => reader.push(text.push(chunk)) : (chunk) => reader.push(chunk);
      partial = () => reader.partial || (text?.partial ?? false);
    }
    body.on("data", (chunk: Buffer) => {
      if (this.done) return;
      try {
        push(chunk);
      } catch (e) {
        this.failRead(e);
      }
    });
    body.on("end", () => {
      if (this.done) return;
      if (partial()) return this.failRead(new GrpcWireError(grpc.status.INTERNAL, "the request ended inside a message"));
      this.listener!.halfClose();
    });
    if (this.paused) body.pause();
  }

  /** A request message as protobuf binary: Connect JSON converted with the method's input descriptor. */
  private requestMessage(raw: Buffer): Buffer {
    if (this.protocol.kind === "grpc-web" || !this.protocol.json) return raw;
    const input = this.desc!.input;
    let json: JsonValue;
    try {
      json = JSON.parse(raw.toString("utf8")) as JsonValue;
    } catch (e) {
      throw new GrpcWireError(grpc.status.INVALID_ARGUMENT, `the request is not valid JSON: ${(e as Error).message}`);
    }
    try {
      return Buffer.from(toBinary(input, fromJson(input, json)));
    } catch (e) {
      throw new GrpcWireError(grpc.status.INVALID_ARGUMENT, `the request is not a valid ${input.typeName} in JSON: ${(e as Error).message}`);
    }
  }

  /** A response message in the call's codec: JSON converted with the method's output descriptor. */
  private responseMessage(message: Buffer): Buffer {
    if (this.protocol.kind === "grpc-web" || !this.protocol.json) return message;
    const output = this.desc!.output;
    return Buffer.from(JSON.stringify(toJson(output, fromBinary(output, message))), "utf8");
  }

  private failRead(e: unknown): void {
    const code = e instanceof GrpcWireError ? e.code : grpc.status.INTERNAL;
    const message = (e as Error).message;
    this.end(code, message);
    this.listener?.cancel({ code, message });
  }

  pause(): void {
    this.paused = true;
    if (this.reading) this.ex.body.pause();
  }

  resume(): void {
    this.paused = false;
    if (this.reading) this.ex.body.resume();
  }

  sendHeaders(metadata?: grpc.Metadata): void {
    if (this.headersSent || this.done) return;
    if (this.protocol.kind === "connect-unary") {
      // The HTTP status depends on the outcome: headers go out with it.
      this.headerMetadata = metadata;
      return;
    }
    this.headersSent = true;
    this.respond(200, this.protocol.contentType, metadata);
  }

  private respond(status: number, contentType: string, metadata: grpc.Metadata | undefined, more?: Record<string, string | string[]>): void {
    const headers = headersFromMetadata(metadata, { ...this.extraHeaders, ...more, "content-type": contentType } as Record<string, string | string[]>);
    try {
      this.ex.respond(status, headers);
    } catch {
      // the client went away
    }
  }

  write(message: Buffer, flushed?: () => void): boolean {
    if (this.done || this.ex.closed) return true;
    let out: Buffer;
    try {
      out = this.responseMessage(message);
    } catch (e) {
      this.end(grpc.status.INTERNAL, `the response is not a valid ${this.desc?.output.typeName}: ${(e as Error).message}`);
      return true;
    }
    if (this.protocol.kind === "connect-unary") {
      this.unaryResponse = out;
      flushed?.();
      return true;
    }
    if (!this.headersSent) this.sendHeaders();
    return this.writeBody(envelope(0, out), flushed);
  }

  private writeBody(bytes: Buffer, flushed?: () => void): boolean {
    const cb = flushed ? () => flushed() : undefined;
    try {
      return this.textOut ? this.ex.write(this.textOut.push(bytes), cb) : this.ex.write(bytes, cb);
    } catch {
      return true;
    }
  }

  drained(): Promise<void> {
    if (this.done || this.ex.closed || !this.ex.needDrain) return Promise.resolve();
    return new Promise((resolve) => this.ex.onDrainOrClose(resolve));
  }

  end(code: number, message: string, trailers?: grpc.Metadata): void {
    if (this.done) return;
    this.done = true;
    const ex = this.ex;
    if (ex.closed) return;
    // Whatever the client still sends is read and dropped.
    if (this.paused || !this.reading) ex.body.resume();
    try {
      switch (this.protocol.kind) {
        case "grpc-web": {
          if (!this.headersSent) this.respond(200, this.protocol.contentType, undefined);
          this.headersSent = true;
          const frame = grpcWebTrailerFrame(code, message, trailers);
          if (this.textOut) ex.end(this.textOut.push(frame) + this.textOut.flush());
          else ex.end(frame);
          return;
        }
        case "connect-stream": {
          if (!this.headersSent) this.respond(200, this.protocol.contentType, undefined);
          this.headersSent = true;
          const endJson: Record<string, unknown> = {};
          if (code !== grpc.status.OK) endJson.error = connectErrorJson(code, message, trailers);
          const md = metadataJson(trailers);
          if (Object.keys(md).length > 0) endJson.metadata = md;
          ex.end(envelope(0x02, Buffer.from(JSON.stringify(endJson), "utf8")));
          return;
        }
        case "connect-unary": {
          this.headersSent = true;
          const trailerHeaders = prefixed(trailers);
          if (code === grpc.status.OK && this.unaryResponse !== undefined) {
            this.respond(200, this.protocol.contentType, this.headerMetadata, { ...trailerHeaders, "content-length": String(this.unaryResponse.length) });
            ex.end(this.unaryResponse);
            return;
          }
          const body = Buffer.from(
            JSON.stringify(
              code === grpc.status.OK
                ? connectErrorJson(grpc.status.UNIMPLEMENTED, "the method sent no response message", undefined)
                : connectErrorJson(code, message, trailers),
            ),
            "utf8",
          );
          const status = connectHttpStatus(code === grpc.status.OK ? grpc.status.UNIMPLEMENTED : code);
          this.respond(status, "application/json", this.headerMetadata, { ...trailerHeaders, "content-length": String(body.length) });
          ex.end(body);
          return;
        }
      }
    } catch {
      // the client went away meanwhile
    }
  }
}

/** Connect unary sends trailers as headers named "trailer-<name>". */
function prefixed(trailers: grpc.Metadata | undefined): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (const [k, v] of Object.entries(headersFromMetadata(trailers, {} as Record<string, string | string[]>))) {
    if (k === "grpc-status-details-bin") continue; // in the error's details
    out[`trailer-${k}`] = v;
  }
  return out;
}
