// Prints a router proto and builds its FileDescriptorProto in one pass, so the text written
// to disk and the descriptor handed to protoc-gen-es (phase 2) cannot disagree. A test
// compiles the text with buf and compares the result with the descriptor built here.
import { create } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import {
  DescriptorProtoSchema,
  FieldDescriptorProtoSchema,
  FieldDescriptorProto_Label,
  FieldDescriptorProto_Type,
  FileDescriptorProtoSchema,
  ServiceDescriptorProtoSchema,
  SourceCodeInfo_LocationSchema,
  type DescriptorProto,
  type FieldDescriptorProto,
  type FileDescriptorProto,
  type SourceCodeInfo_Location,
} from "@bufbuild/protobuf/wkt";
import { GENERATED_MARKER } from "../../marker.js";
import {
  FIRST_METHOD_FIELD,
  INSTANCE_CONTROL_FIELDS,
  ROUTER_CONTROL_FIELDS,
  type RouterFilePlan,
  type RouterMethodPlan,
  type RouterServicePlan,
} from "./plan.js";

export interface EmittedRouterProto {
  path: string;
  text: string;
  descriptor: FileDescriptorProto;
}

const FILE_MESSAGE = 4;
const FILE_SERVICE = 6;
const MESSAGE_FIELD = 2;
const SERVICE_METHOD = 2;

class Printer {
  readonly lines: string[] = [];
  readonly locations: SourceCodeInfo_Location[] = [];
  get line(): number {
    return this.lines.length;
  }
  print(s = ""): void {
    this.lines.push(s);
  }
  comment(text: string, indent: string): string | undefined {
    if (!text) return undefined;
    for (const l of text.split("\n")) this.print(l ? `${indent}// ${l}` : `${indent}//`);
    return (
      text
        .split("\n")
        .map((l) => (l ? ` ${l}` : ""))
        .join("\n") + "\n"
    );
  }
  locate(path: number[], span: number[], leading?: string): void {
    this.locations.push(create(SourceCodeInfo_LocationSchema, { path, span, ...(leading ? { leadingComments: leading } : {}) }));
  }
}

export function emitRouterProto(plan: RouterFilePlan): EmittedRouterProto {
  const p = new Printer();
  const pkg = plan.package;
  const fq = (n: string) => (pkg ? `.${pkg}.${n}` : `.${n}`);
  p.print(GENERATED_MARKER);
  p.print(`// source: ${plan.file}`);
  p.print("//");
  p.print("// The grpcrouter tunnel of each service in the source file: an instance dials the router and");
  p.print("// holds a Register stream of typed frames (see grpcrouter/v1/tunnel.proto). Method field");
  p.print("// numbers never change: grpcrouter keeps them across regenerations and reserves removed ones.");
  p.print();
  p.print('syntax = "proto3";');
  p.print();
  if (pkg) {
    p.print(`package ${pkg};`);
    p.print();
  }
  for (const imp of plan.imports) p.print(`import "${imp}";`);

  const messages: DescriptorProto[] = [];
  const services: FileDescriptorProto["service"] = [];
  for (const s of plan.services) {
    const si = services.length;
    p.print();
    const intro = `${s.names.service} is the grpcrouter tunnel of ${s.service}.`;
    const leading = p.comment(s.comment ? `${s.comment}\n\n${intro}` : intro, "");
    const start = p.line;
    p.print(`service ${s.names.service} { // routes ${s.service}`);
    const regComment = p.comment(`Register is the stream an instance of ${s.service} holds open to the router.`, "  ");
    p.locate([FILE_SERVICE, si, SERVICE_METHOD, 0], [p.line, 2, 2 + registerLine(s).length], regComment);
    p.print(`  ${registerLine(s)}`);
    p.print("}");
    p.locate([FILE_SERVICE, si], [start, 0, p.line - 1, 1], leading);
    services.push(
      create(ServiceDescriptorProtoSchema, {
        name: s.names.service,
        method: [
          { name: "Register", inputType: fq(s.names.instanceMessage), outputType: fq(s.names.routerMessage), clientStreaming: true, serverStreaming: true },
        ],
      }),
    );

    messages.push(
      envelope(p, messages.length, s.names.instanceMessage, s.names.instanceFrame, fq, `Frames from an instance of ${s.service} to the router, sent together.`),
    );
    messages.push(
      envelope(p, messages.length, s.names.routerMessage, s.names.routerFrame, fq, `Frames from the router to an instance of ${s.service}, sent together.`),
    );
    messages.push(frame(p, messages.length, s, "router"));
    messages.push(frame(p, messages.length, s, "instance"));
  }

  const text = p.lines.join("\n") + "\n";
  const descriptor = create(FileDescriptorProtoSchema, {
    name: plan.routerFile,
    // descriptor.proto is proto2: an empty package set explicitly would differ from what protoc builds.
    ...(pkg ? { package: pkg } : {}),
    dependency: plan.imports,
    messageType: messages,
    service: services,
    syntax: "proto3",
    sourceCodeInfo: { location: p.locations },
  });
  return { path: plan.routerFile, text, descriptor };
}

function registerLine(s: RouterServicePlan): string {
  return `rpc Register(stream ${s.names.instanceMessage}) returns (stream ${s.names.routerMessage});`;
}

function envelope(p: Printer, mi: number, name: string, frameName: string, fq: (n: string) => string, doc: string): DescriptorProto {
  p.print();
  const leading = p.comment(doc, "");
  const start = p.line;
  p.print(`message ${name} {`);
  p.locate([FILE_MESSAGE, mi, MESSAGE_FIELD, 0], [p.line, 2, 2 + `repeated ${frameName} frames = 1;`.length]);
  p.print(`  repeated ${frameName} frames = 1;`);
  p.print("}");
  p.locate([FILE_MESSAGE, mi], [start, 0, p.line - 1, 1], leading);
  return create(DescriptorProtoSchema, {
    name,
    field: [field("frames", 1, FieldDescriptorProto_Type.MESSAGE, fq(frameName), FieldDescriptorProto_Label.REPEATED)],
  });
}

function frame(p: Printer, mi: number, s: RouterServicePlan, side: "router" | "instance"): DescriptorProto {
  const name = side === "router" ? s.names.routerFrame : s.names.instanceFrame;
  const controls = side === "router" ? ROUTER_CONTROL_FIELDS : INSTANCE_CONTROL_FIELDS;
  const payload = side === "router" ? "The request message" : "The response message";
  p.print();
  const leading = p.comment(
    side === "router"
      ? `One frame from the router to an instance of ${s.service}: a control frame, or a request\nmessage of call \`call\` in the field of its method.`
      : `One frame from an instance of ${s.service} to the router: a control frame, or a response\nmessage of call \`call\` in the field of its method.`,
    "",
  );
  const start = p.line;
  p.print(`message ${name} {`);
  const fields: FieldDescriptorProto[] = [];
  const reservedRange: { start: number; end: number }[] = [{ start: 10, end: FIRST_METHOD_FIELD }];
  p.print(`  reserved 10 to ${FIRST_METHOD_FIELD - 1}; // future control frames`);
  for (const r of s.reserved) {
    p.print(`  reserved ${r.number}; // rpc ${r.method} (removed)`);
    reservedRange.push({ start: r.number, end: r.number + 1 });
  }
  for (const n of s.reservedNames) p.print(`  reserved "${n}";`);
  p.print();
  const callComment = p.comment("The call this frame belongs to; 0 for frames about the stream itself.", "  ");
  p.locate([FILE_MESSAGE, mi, MESSAGE_FIELD, 0], [p.line, 2, 2 + "uint64 call = 1;".length], callComment);
  fields.push(field("call", 1, FieldDescriptorProto_Type.UINT64));
  p.print("  uint64 call = 1;");
  p.print("  oneof frame {");
  for (const [number, type, fieldName] of controls) {
    const line = `.grpcrouter.v1.${type} ${fieldName} = ${number};`;
    p.locate([FILE_MESSAGE, mi, MESSAGE_FIELD, fields.length], [p.line, 4, 4 + line.length]);
    p.print(`    ${line}`);
    fields.push(field(fieldName, number, FieldDescriptorProto_Type.MESSAGE, `.grpcrouter.v1.${type}`, undefined, 0));
  }
  for (const m of s.methods) {
    const type = side === "router" ? m.requestType : m.responseType;
    const doc = `${m.comment ? m.comment + "\n\n" : ""}${payload} of ${m.path} (${kindText(m)}).`;
    const leadingField = p.comment(doc, "    ");
    const line = `.${type} ${m.fieldName} = ${m.fieldNumber}; // rpc ${m.name}`;
    p.locate([FILE_MESSAGE, mi, MESSAGE_FIELD, fields.length], [p.line, 4, 4 + line.length], leadingField);
    p.print(`    ${line}`);
    fields.push(field(m.fieldName, m.fieldNumber, FieldDescriptorProto_Type.MESSAGE, `.${type}`, undefined, 0));
  }
  p.print("  }");
  p.print("}");
  p.locate([FILE_MESSAGE, mi], [start, 0, p.line - 1, 1], leading);
  return create(DescriptorProtoSchema, {
    name,
    field: fields,
    oneofDecl: [{ name: "frame" }],
    reservedRange: reservedRange.sort((a, b) => a.start - b.start),
    reservedName: s.reservedNames,
  });
}

function kindText(m: RouterMethodPlan): string {
  return m.kind.replace("_", "-");
}

function field(
  name: string,
  number: number,
  type: FieldDescriptorProto_Type,
  typeName?: string,
  label = FieldDescriptorProto_Label.OPTIONAL,
  oneofIndex?: number,
): FieldDescriptorProto {
  return create(FieldDescriptorProtoSchema, {
    name,
    number,
    label,
    type,
    ...(typeName !== undefined ? { typeName } : {}),
    jsonName: protoCamelCase(name),
    ...(oneofIndex !== undefined ? { oneofIndex } : {}),
  });
}
