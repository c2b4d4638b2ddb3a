// Writes ../static/jssip-licences.txt: the licence of every package bundled into jssip.min.js.
import { readFileSync, readdirSync, writeFileSync } from "node:fs";

const bundled = ["jssip", "debug", "events", "ms", "sdp-transform"];
const parts = bundled.map((name) => {
  const dir = `node_modules/${name}`;
  const { version, license } = JSON.parse(readFileSync(`${dir}/package.json`, "utf8"));
  const file = readdirSync(dir).find((f) => /^licen[sc]e/i.test(f));
  return `${name} ${version} (${license})\n\n${readFileSync(`${dir}/${file}`, "utf8").trim()}\n`;
});
writeFileSync("../static/jssip-licences.txt", parts.join("\n" + "-".repeat(72) + "\n\n"));
