// size.mjs: measures wasmgate.js and wasmgate.global.js as shipped,
// minified (terser) and minified+gzip. Installs terser into web/node_modules
// (gitignored, not saved in package.json) when it is missing.
// Usage: node web/size.mjs
import { readFileSync, existsSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const dir = fileURLToPath(new URL(".", import.meta.url));
export const TERSER = "terser@5.51.4";

/** Minified sizes of the two client files, or null when terser is not installed. */
export async function measure() {
  let terser;
  try {
    terser = await import("terser");
  } catch (e) {
    return null;
  }
  const out = {};
  for (const [f, module] of [["wasmgate.js", true], ["wasmgate.global.js", false]]) {
    const src = readFileSync(dir + f, "utf8");
    const min = (await terser.minify(src, { module, compress: { passes: 2 }, mangle: true })).code;
    out[f] = { raw: Buffer.byteLength(src), min: Buffer.byteLength(min), gzip: gzipSync(min).length };
  }
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (!existsSync(dir + "node_modules/terser")) {
    console.log("installing " + TERSER + " into web/node_modules");
    execFileSync("npm", ["install", "--no-save", "--no-package-lock", "--no-audit", "--no-fund", TERSER], { cwd: dir, stdio: "inherit" });
  }
  for (const [f, s] of Object.entries(await measure())) {
    console.log(`${f}: ${s.raw} bytes, ${s.min} minified (terser), ${s.gzip} minified+gzip`);
  }
}
