// Validates an AsyncAPI document with the official parser; prints its diagnostics as JSON lines and exits 1 when
// any is an error. Usage: node validate.mjs <document.json>
import { readFile } from "node:fs/promises";
import { Parser } from "@asyncapi/parser";

const text = await readFile(process.argv[2], "utf8");
const diagnostics = await new Parser().validate(text);
for (const diagnostic of diagnostics) {
  console.log(JSON.stringify({ severity: diagnostic.severity, code: diagnostic.code, message: diagnostic.message, path: diagnostic.path }));
}
process.exit(diagnostics.some((diagnostic) => diagnostic.severity === 0) ? 1 : 0);
