// Run a Python script on the real MicroPython VM (v1.27.0, WebAssembly port) under Node.js.
//
//   node tools/micropython/run.mjs SCRIPT.py [--package NAME] [MODULE.py ...]
//
// The MODULE.py files are copied into /lib/NAME/ inside the VM's filesystem (NAME defaults to
// "qref"); if none of them is an __init__.py an empty one is written, so they form a package and
// relative imports (`from . import q16`) work. /lib is appended to sys.path, then SCRIPT.py runs
// as __main__. Its stdout goes to this process's stdout. If the Python code raises, the traceback
// goes to stderr and the exit status is 1; bad usage exits with 2.
//
// Setup: `npm ci --prefix tools/micropython` (scripts/setup.sh does it).

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { loadMicroPython } from "@micropython/micropython-webassembly-pyscript";

function usage(msg) {
  process.stderr.write(`run.mjs: ${msg}\n`);
  process.stderr.write("usage: node run.mjs SCRIPT.py [--package NAME] [MODULE.py ...]\n");
  process.exit(2);
}

// ---- command line ---------------------------------------------------------------------------
const args = process.argv.slice(2);
let script = null;
let pkg = "qref";
const modules = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--package") {
    pkg = args[++i];
    if (!pkg || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(pkg)) usage("--package needs a Python identifier");
  } else if (script === null) {
    script = args[i];
  } else {
    modules.push(args[i]);
  }
}
if (script === null) usage("no script given");

// ---- the VM -----------------------------------------------------------------------------------
// Byte-wise stdout (linebuffer: false) so that a last line without "\n" is not lost; the bytes
// are collected and written in large chunks.
let outBuf = [];
const flush = () => {
  if (outBuf.length) process.stdout.write(Buffer.from(outBuf));
  outBuf = [];
};
const mp = await loadMicroPython({
  heapsize: 16 * 1024 * 1024, // the default 1 MiB is tight for big-int-heavy matrices
  linebuffer: false,
  stdout: (bytes) => {
    for (const b of bytes) outBuf.push(b);
    if (outBuf.length >= 65536) flush();
  },
  stderr: (bytes) => process.stderr.write(Buffer.from(bytes)),
});

// ---- the package: /lib/<pkg>/ -------------------------------------------------------------------
const dir = `/lib/${pkg}`;
for (const d of ["/lib", dir]) {
  try { mp.FS.mkdir(d); } catch (e) { /* already exists */ }
}
let haveInit = false;
for (const path of modules) {
  const name = basename(path);
  if (!name.endsWith(".py")) usage(`not a .py file: ${path}`);
  mp.FS.writeFile(`${dir}/${name}`, readFileSync(path));
  haveInit ||= name === "__init__.py";
}
if (!haveInit) mp.FS.writeFile(`${dir}/__init__.py`, "");

// ---- run ----------------------------------------------------------------------------------------
let status = 0;
try {
  mp.runPython("import sys\nif '/lib' not in sys.path:\n    sys.path.append('/lib')\n");
  mp.runPython(readFileSync(script, "utf8"));
} catch (e) {
  // A Python exception arrives as a JS PythonError whose message is the MicroPython traceback.
  flush();
  process.stderr.write(String(e && e.message !== undefined ? e.message : e));
  if (!String(e && e.message).endsWith("\n")) process.stderr.write("\n");
  status = 1;
}
flush();
process.exitCode = status;
