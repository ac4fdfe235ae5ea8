// Oracle: decode an .spz with spz-js (loadSpz) and write what it decoded as a 3DGS PLY.
// Usage: node spz_to_ply.mjs IN.spz OUT.ply
import { readFileSync, writeFileSync } from "node:fs";
import { loadSpz, serializePly } from "spz-js";

const [, , input, output] = process.argv;
const cloud = await loadSpz(new Uint8Array(readFileSync(input)));
if (!cloud) {
  console.error(`spz-js could not decode ${input}`);
  process.exit(1);
}
writeFileSync(output, Buffer.from(serializePly(cloud)));
