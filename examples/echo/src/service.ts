// The Echo service as any Connect service would write it: a ServiceImpl<typeof Echo>.
// Nothing here knows about grpcrouter; the bridge (one import, three lines in main.ts)
// makes it routable.
import { create } from "@bufbuild/protobuf";
import type { ServiceImpl } from "@connectrpc/connect";
import { Code, ConnectError } from "@connectrpc/connect";
import { CollectResponseSchema, CountResponseSchema, type Echo, SayResponseSchema } from "../gen/demo/v1/echo_pb.js";

/** The most messages Count streams for one call, so a typo cannot stream forever. */
const MAX_COUNT = 1_000_000;

export function echoService(instanceId: string): ServiceImpl<typeof Echo> {
  return {
    say(req) {
      return create(SayResponseSchema, { text: req.text, instanceId });
    },
    async *count(req, ctx) {
      if (req.count > MAX_COUNT) {
        throw new ConnectError(`count must be at most ${MAX_COUNT}, got ${req.count}`, Code.InvalidArgument);
      }
      for (let index = 1; index <= req.count; index++) {
        if (ctx.signal.aborted) return;
        yield create(CountResponseSchema, { text: req.text, index });
      }
    },
    async collect(requests) {
      const texts: string[] = [];
      for await (const req of requests) texts.push(req.text);
      return create(CollectResponseSchema, { text: texts.join(" "), count: texts.length });
    },
    async *chat(requests) {
      for await (const req of requests) {
        yield create(SayResponseSchema, { text: req.text, instanceId });
      }
    },
  };
}
