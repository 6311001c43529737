// Run a script on the real MicroPython VM (v1.27.0, WebAssembly port, from tools/micropython)
// with a host directory as the board's filesystem.
//
//   node tests/micropython/device_run.mjs DEVICE_DIR SCRIPT.py [EXTRA_PATH_DIR ...]
//
// Every file under DEVICE_DIR is copied into the VM at /device (the board's flash as deploy.sh
// leaves it: main.py, config.json, shard.bin, qora_node/, qref/), the VM's working directory
// becomes /device and /device is put first on sys.path, as '' is on a board. Each
// EXTRA_PATH_DIR (the hardware stand-ins) is copied to /extraN and appended to sys.path.
// SCRIPT.py runs as __main__; its stdout goes to stdout. Afterwards every file under /device
// is written back to DEVICE_DIR (files the script created or changed, e.g. the node's state
// file), so a second run sees them: a reboot. A Python exception: traceback on stderr, exit 1.

import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";

const here = new URL(".", import.meta.url).pathname;
const toolDir = resolve(here, "../../tools/micropython");
const req = createRequire(join(toolDir, "package.json"));
const { loadMicroPython } = await import(
  pathToFileURL(req.resolve("@micropython/micropython-webassembly-pyscript")).href);

const [deviceDir, script, ...extra] = process.argv.slice(2);
if (!deviceDir || !script) {
  process.stderr.write("usage: node device_run.mjs DEVICE_DIR SCRIPT.py [EXTRA_PATH_DIR ...]\n");
  process.exit(2);
}

let outBuf = [];
const flush = () => {
  if (outBuf.length) process.stdout.write(Buffer.from(outBuf));
  outBuf = [];
};
const mp = await loadMicroPython({
  heapsize: Number(process.env.QORA_MP_HEAP || 16 * 1024 * 1024),  // QORA_MP_HEAP: bytes, e.g. an ESP32's
  linebuffer: false,
  stdout: (bytes) => {
    for (const b of bytes) outBuf.push(b);
    if (outBuf.length >= 65536) flush();
  },
  stderr: (bytes) => process.stderr.write(Buffer.from(bytes)),
});

function copyIn(hostDir, vmDir) {
  try { mp.FS.mkdir(vmDir); } catch (e) { /* exists */ }
  for (const name of readdirSync(hostDir)) {
    const h = join(hostDir, name);
    const v = `${vmDir}/${name}`;
    if (statSync(h).isDirectory()) copyIn(h, v);
    else mp.FS.writeFile(v, readFileSync(h));
  }
}

function copyOut(vmDir, hostDir) {
  mkdirSync(hostDir, { recursive: true });
  for (const name of mp.FS.readdir(vmDir)) {
    if (name === "." || name === "..") continue;
    const v = `${vmDir}/${name}`;
    const h = join(hostDir, name);
    if (mp.FS.isDir(mp.FS.stat(v).mode)) copyOut(v, h);
    else writeFileSync(h, mp.FS.readFile(v));
  }
}

copyIn(deviceDir, "/device");
const paths = ["'/device'"];
extra.forEach((dir, i) => {
  copyIn(dir, `/extra${i}`);
  paths.push(`'/extra${i}'`);
});

let status = 0;
try {
  mp.runPython(
    "import os, sys\nos.chdir('/device')\n" +
    `for p in [${paths.join(", ")}]:\n    if p not in sys.path:\n        sys.path.append(p)\n` +
    "sys.path.remove('/device')\nsys.path.insert(0, '/device')\n");
  mp.runPython(readFileSync(script, "utf8"));
} catch (e) {
  flush();
  process.stderr.write(String(e && e.message !== undefined ? e.message : e));
  if (!String(e && e.message).endsWith("\n")) process.stderr.write("\n");
  status = 1;
}
flush();
copyOut("/device", deviceDir);
process.exitCode = status;
