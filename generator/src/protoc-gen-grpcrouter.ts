#!/usr/bin/env node
// protoc/buf plugin entry point: reads a CodeGeneratorRequest on stdin, writes the response.
import { runNodeJs } from "@bufbuild/protoplugin";
import { grpcrouterPlugin } from "./plugin.js";

runNodeJs(grpcrouterPlugin);
