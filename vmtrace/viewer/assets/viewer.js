// vmtrace view: every pane shows the state before instruction `step` runs; what "the last
// step" (instruction step-1) changed is highlighted. All program-controlled text goes into
// the page through textContent, never as HTML.
"use strict";

const hex = (v, width) => "0x" + BigInt(v).toString(16).padStart(width || 0, "0");
const plural = (n, word) => `${n.toLocaleString()} ${word}${n === 1 ? "" : "s"}`;

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) {
    if (c === undefined || c === null) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function humanBytes(n) {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB"];
  let i = 0, v = Number(n);
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return i === 0 ? plural(v, "byte") : `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

// -- where the data comes from: the server's JSON API, or an exported bundle -------------
const serverSource = {
  async get(path, params) {
    const qs = new URLSearchParams(params || {}).toString();
    const res = await fetch(`api/${path}${qs ? "?" + qs : ""}`);
    const body = await res.json();
    if (!res.ok) throw new Error(body.error || res.statusText);
    return body;
  },
};

const FLAG_BITS = { CF: 0, PF: 2, AF: 4, ZF: 6, SF: 7, TF: 8, IF: 9, DF: 10, OF: 11 };

// The same answers as the server's, from `trace view --export`'s data.js (docs/viewer.md).
function bundleSource(B) {
  const bytesOf = h => Uint8Array.from(h.match(/../g) || [], x => parseInt(x, 16));
  let memory = null;   // parsed on first use
  const mem = () => memory || (memory = {
    image: B.memory.image.map(r => ({ start: r.start, data: bytesOf(r.data) })),
    // Fresh mappings (zeros) before the writes of the same step: a file's bytes are
    // written into its mapping after the mapping is made.
    events: B.memory.fresh.map(f => ({ step: f[0], kind: 0, addr: f[1], end: f[2] }))
      .concat(B.memory.writes.map(w => ({ step: w[0], kind: 1, rip: w[1], addr: w[2],
        data: bytesOf(w[3]), source: w[4] })))
      .sort((a, b) => a.step - b.step || a.kind - b.kind),
  });
  const fail = text => { throw new Error(text); };
  const checkStep = step => {
    const n = Number(step);
    if (!Number.isInteger(n) || n < 0 || n > B.meta.steps)
      fail(`step ${step} is outside the run (steps 0 to ${B.meta.steps})`);
    return n;
  };
  const resolve = text => {
    const t = String(text).trim();
    const m = /^([A-Za-z_.$?@][\w.$?@]*)?\s*(?:\+?\s*(0x[0-9a-f]+|\d+))?$/i.exec(t);
    if (!m || (!m[1] && !m[2])) fail(`'${t}' is neither an address nor a symbol of the program`);
    if (!m[1]) return Number(m[2]);
    if (!(m[1] in B.symbols)) fail(`'${t}' is neither an address nor a symbol of the program`);
    return B.symbols[m[1]] + (m[2] ? Number(m[2]) : 0);
  };
  const row = step => B.steps[step];
  function state(step) {
    const s = row(step);
    const hexes = B.registers[step];
    const registers = {}, registers_hex = {};
    B.register_names.forEach((n, i) => { registers_hex[n] = hexes[i]; registers[n] = Number(hexes[i]); });
    const eflags = Number(BigInt(hexes[B.register_names.indexOf("eflags")]));
    const flags = {};
    for (const [n, bit] of Object.entries(FLAG_BITS)) flags[n] = Boolean((eflags >> bit) & 1);
    const [map, newest] = B.tables.map[s[2]];
    return { step, registers, registers_hex, flags, instruction: B.tables.insn[s[0]],
      source: B.tables.line[s[1]], ended: Boolean(s[3]), map, newest_mapping: newest,
      changed: B.changed[step] };
  }
  function memoryAt(step, addrText, length) {
    const start = resolve(addrText);
    const m = mem(), st = state(step);
    const bytes = new Uint8Array(length), mapped = new Array(length).fill(false);
    const written = new Array(length).fill(false);
    for (const r of st.map)
      for (let a = Math.max(start, r.start); a < Math.min(start + length, r.end); a++)
        mapped[a - start] = true;
    for (const r of m.image)
      for (let a = Math.max(start, r.start); a < Math.min(start + length, r.start + r.data.length); a++)
        bytes[a - start] = r.data[a - r.start];
    for (const e of m.events) {
      if (e.step >= step) break;
      const end = e.kind === 0 ? e.end : e.addr + e.data.length;
      for (let a = Math.max(start, e.addr); a < Math.min(start + length, end); a++) {
        bytes[a - start] = e.kind === 0 ? 0 : e.data[a - e.addr];
        if (e.kind === 1) written[a - start] = e.step === step - 1;
      }
    }
    let hexText = "";
    bytes.forEach((b, i) => { hexText += mapped[i] ? b.toString(16).padStart(2, "0") : "00"; });
    return { step, start, length, symbol: null, bytes: hexText, mapped,
      written_by_last_step: written.map((w, i) => w && mapped[i]) };
  }
  function lastWrite(addr, before) {
    let found = null;
    for (const e of mem().events) {
      if (e.step >= before) break;
      const end = e.kind === 0 ? e.end : e.addr + e.data.length;
      if (e.addr <= addr && addr < end) found = e.kind === 1 ? e : null;
    }
    return found;
  }
  function whoWrote(step, addrText) {
    const addr = resolve(addrText);
    const w = lastWrite(addr, step);
    const out = { addr, addr_hex: hex(addr), step, write: null };
    if (w) {
      const who = w.rip === null ? {} : B.memory.writers[hex(w.rip)] || {};
      out.write = { step: w.step, rip: w.rip, addr: w.addr, size: w.data.length,
        source: w.source, symbol: who.symbol || null, line: who.line || null,
        syscall: w.source === "kernel" ? B.memory.syscalls[String(w.step)] || null : null };
    }
    return out;
  }
  function seekTo(step, what, dir, addrText) {
    const forward = dir !== "prev";
    if (what === "write") {
      if (!addrText) fail("seeking the next write needs an address to watch");
      const addr = resolve(addrText);
      const hits = mem().events.filter(e => e.kind === 1 && e.addr <= addr &&
        addr < e.addr + e.data.length).map(e => e.step + 1);
      const land = forward ? hits.find(s => s > step) : hits.filter(s => s < step).pop();
      return { step: land === undefined || land > B.meta.steps ? null : land, what };
    }
    const steps = B.seek[what] || fail(`cannot seek to '${what}'`);
    const land = forward ? steps.find(s => s > step) : steps.filter(s => s < step).pop();
    return { step: land === undefined ? null : land, what };
  }
  const answers = {
    meta: () => B.meta, timeline: () => B.timeline, source: () => B.source,
    state: p => state(checkStep(p.step)),
    heap: p => ({ ...B.tables.heap[row(checkStep(p.step))[6]], step: Number(p.step) }),
    "who-wrote": p => whoWrote(checkStep(p.step), p.addr),
    seek: p => seekTo(checkStep(p.step), p.what, p.dir, p.addr),
    view: p => {
      const step = checkStep(p.step), s = row(step);
      const out = { state: state(step), stack: { ...B.tables.stack[s[4]], step },
        disassembly: { ...B.tables.disasm[s[5]], step },
        output: { step, chunks: B.output.filter(o => o.step < step) } };
      if (p.addr) {
        try { out.memory = memoryAt(step, p.addr, Number(p.len || 256)); }
        catch (e) { out.memory = { error: e.message }; }
      }
      return out;
    },
  };
  return {
    async get(path, params) {
      const answer = answers[path];
      if (!answer) fail(`no ${path} in an exported view`);
      return answer(params || {});
    },
  };
}

const Data = window.VMTRACE_BUNDLE ? bundleSource(window.VMTRACE_BUNDLE) : serverSource;

const S = {                 // what the page knows
  meta: null, timeline: null, source: null,
  target: 0,                // the step asked for
  shown: -1,                // the step drawn
  busy: false,
  memAddr: null, watch: null,
  playing: null,
  lastState: null,
};

function notice(text) { document.getElementById("notice").textContent = text || ""; }

// -- moving: one request in flight at most; the newest target wins ------------------------
function clamp(step) { return Math.max(0, Math.min(S.meta.steps, Math.round(step))); }

function go(step, how) {
  S.target = clamp(step);
  const url = `?step=${S.target}`;
  if (how === "push" && location.search !== url) history.pushState({ step: S.target }, "", url);
  else history.replaceState({ step: S.target }, "", url);
  document.getElementById("slider").value = S.target;
  pump();
}

async function pump() {
  if (S.busy || S.target === S.shown) return;
  S.busy = true;
  const step = S.target;
  const params = { step };
  if (S.memAddr) { params.addr = S.memAddr; params.len = 256; }
  try {
    const view = await Data.get("view", params);
    draw(view);
    S.shown = step;
    notice("");
    loadHeap(step);
  } catch (e) {
    notice(String(e.message || e));
    S.shown = step;
  } finally {
    S.busy = false;
  }
  if (S.target !== S.shown) pump();
}

async function loadHeap(step) {
  try {
    const heap = await Data.get("heap", { step });
    if (S.shown === step) drawHeap(heap);
  } catch (e) { /* the heap pane says nothing new; the notice line has the view's error */ }
}

async function seek(what, dir) {
  const params = { step: S.target, what, dir };
  if (what === "write") {
    if (S.watch === null) { notice("click a byte in the memory pane to watch it first"); return; }
    params.addr = hex(S.watch);
  }
  try {
    const t = await Data.get("seek", params);
    if (t.step === null) notice(`no ${dir === "next" ? "later" : "earlier"} ${what}`);
    else go(t.step, "push");
  } catch (e) { notice(String(e.message || e)); }
}

// -- drawing ---------------------------------------------------------------------------
function draw(view) {
  const st = view.state;
  document.getElementById("step").textContent = st.step.toLocaleString();
  const srcLine = document.getElementById("source-line");
  srcLine.textContent = "";
  if (st.source) {
    const text = sourceText(st.source.line);
    srcLine.append(`${st.source.file.split("/").pop()}:${st.source.line}`,
      text ? el("span", { class: "dim" }, "  " + text.trim()) : "");
  }
  const insn = st.instruction;
  const current = view.disassembly.instructions.find(i => i.current);
  const text = current ? current.symbolic : insn ? insn.text : "";
  document.getElementById("last-step").textContent = insn
    ? `next: ${text}${insn.symbol ? "  <" + insn.symbol + ">" : ""}` +
      (st.ended ? "  (the run had ended)" : "")
    : "(RIP is not mapped)";
  drawRegisters(st);
  drawSource(st);
  drawDisassembly(view.disassembly);
  drawStack(view.stack);
  drawMap(st);
  if (view.memory) drawMemory(view.memory);
  drawOutput(view.output);
  moveCursor(st.step);
  S.lastState = st;
  S.lastView = view;
}

const REGS = ["rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10",
  "r11", "r12", "r13", "r14", "r15", "rip", "eflags", "fs_base", "gs_base"];

function drawRegisters(st) {
  const box = document.getElementById("registers");
  box.textContent = "";
  const changed = new Set(st.changed || []);
  for (const r of REGS) {
    const cls = changed.has(r) ? "changed" : "";
    box.append(el("span", { class: "name" }, r),
      el("span", { class: cls, "data-testid": `reg-${r}` },
        "0x" + st.registers_hex[r].slice(2).padStart(16, "0")));
  }
  const flags = document.getElementById("flags");
  flags.textContent = "";
  for (const [name, on] of Object.entries(st.flags))
    flags.append(el("span", { class: on ? "on" : "off" }, name));
}

function sourceText(line) {
  if (!S.source || !S.source.available) return "";
  const row = S.source.byLine.get(line);
  return row ? row.text : "";
}

function drawSource(st) {
  const box = document.getElementById("source");
  if (!S.source) { box.textContent = "loading the source…"; return; }
  if (!S.source.lines.length) {
    box.textContent = S.source.file
      ? `the source (${S.source.file}) is not available` : "no source line table";
    return;
  }
  const line = st.source ? st.source.line : null;
  const prev = box.querySelector(".current");
  if (prev) prev.classList.remove("current");
  const row = line !== null ? box.querySelector(`[data-line="${line}"]`) : null;
  if (row) {
    row.classList.add("current");
    const top = row.offsetTop - box.offsetTop;
    if (top < box.scrollTop || top > box.scrollTop + box.clientHeight - 20)
      box.scrollTop = top - box.clientHeight / 3;
  }
}

function buildSource() {
  const box = document.getElementById("source");
  box.textContent = "";
  document.getElementById("source-file").textContent = S.source.file || "";
  S.source.byLine = new Map(S.source.lines.map(r => [r.line, r]));
  for (const r of S.source.lines) {
    const counts = r.executed ? `${r.executed.toLocaleString()}×` : "";
    box.append(el("div", { class: "src-line", "data-line": r.line,
      title: `ran ${r.executed}, read ${r.reads}, wrote ${r.writes}` },
      el("span", { class: "no" }, r.line), el("span", {}, r.text || " "),
      el("span", { class: "count" }, counts)));
  }
}

function drawDisassembly(d) {
  const box = document.getElementById("disassembly");
  box.textContent = "";
  if (!d.instructions.length) { box.textContent = "(nothing decodes at RIP)"; return; }
  for (const i of d.instructions) {
    if (i.label) box.append(el("div", { class: "label" }, i.label + ":"));
    box.append(el("div", { class: "insn" + (i.current ? " current" : "") },
      el("span", { class: "addr" }, hex(i.address)), el("span", { title: i.text }, i.symbolic)));
  }
}

const STACK_ROWS_MAX = 400;

function drawStack(pic) {
  const box = document.getElementById("stack");
  box.textContent = "";
  box.append(el("div", { class: "dim" },
    `depth ${humanBytes(pic.initial_rsp - pic.rsp)} · RSP ${pic.rsp_hex} · RBP ${pic.rbp_hex}`));
  const frames = new Map(pic.frames.map(f => [f.index, f]));
  let rows = pic.rows;
  let cut = -1;
  if (rows.length > STACK_ROWS_MAX) {
    cut = STACK_ROWS_MAX / 4;
    rows = rows.slice(0, cut).concat([null], rows.slice(rows.length - (STACK_ROWS_MAX - cut)));
  }
  for (const r of rows) {
    if (r === null) {
      box.append(el("div", { class: "dim" }, `⋮ ${pic.rows.length - STACK_ROWS_MAX} rows not shown`));
      continue;
    }
    const f = frames.get(r.frame);
    if (f && r.addr === f.top)
      box.append(el("div", { class: "srow frame-head", "data-frame": f.index }, "", "",
        "", `frame ${f.index}: ${f.function}`, ""));
    let bracket = " ";
    if (f) bracket = r.addr === f.top ? "┌" : (r.addr === f.bottom ? "└" : "│");
    const cls = ["srow", r.kind.replace(" ", "-")];
    if (r.pushed) cls.push("pushed");
    if (r.popped) cls.push("popped");
    const value = r.value_hex === null ? "(unmapped)" : "0x" + r.value_hex.slice(2).padStart(16, "0");
    box.append(el("div", { class: cls.join(" "), "data-addr": hex(r.addr) },
      el("span", { class: "br" }, bracket), el("span", {}, hex(r.addr)),
      el("span", { class: "val" }, value),
      el("span", {}, `${r.kind}${r.meaning ? " " + r.meaning : ""}`),
      el("span", { class: "marks" }, r.marks.map(m => "◀ " + m).join(" "))));
  }
}

function drawMap(st) {
  const box = document.getElementById("vmmap");
  box.textContent = "";
  const regions = [...st.map].sort((a, b) => b.start - a.start);  // high addresses first
  regions.forEach((r, i) => {
    const size = r.end - r.start;
    const cls = ["region", `kind-${r.kind}`];
    if (st.newest_mapping !== undefined && r.start === st.newest_mapping) cls.push("newest");
    let note = "";
    if (r.kind === "heap") note = " ← break";
    if (r.kind === "stack") note = ` (RSP ${st.registers_hex.rsp})`;
    box.append(el("div", { class: cls.join(" "), title: `${hex(r.start)}–${hex(r.end)}` },
      el("span", {}, `${r.name || r.kind} ${r.perms}${note}`),
      el("span", { class: "size" }, `${humanBytes(size)} at ${hex(r.start)}`)));
    const next = regions[i + 1];
    if (next && next.end < r.start)
      box.append(el("div", { class: "gap" }, `gap of ${humanBytes(r.start - next.end)}`));
  });
}

function drawMemory(m) {
  const box = document.getElementById("memory");
  box.textContent = "";
  if (m.error) { box.textContent = m.error; return; }
  const bytes = m.bytes.match(/../g) || [];
  for (let off = 0; off < m.length; off += 16) {
    const addr = BigInt(m.start) + BigInt(off);
    const row = el("div", { class: "hexrow" }, el("span", { class: "dim" }, hex(addr)));
    let ascii = "";
    for (let j = off; j < Math.min(off + 16, m.length); j++) {
      const a = BigInt(m.start) + BigInt(j);
      const mapped = m.mapped[j];
      const cls = ["byte"];
      if (!mapped) cls.push("unmapped");
      if (m.written_by_last_step[j]) cls.push("written");
      if (S.watch !== null && BigInt(S.watch) === a) cls.push("watched");
      const cell = el("span", { class: cls.join(" "), "data-addr": hex(a) },
        mapped ? bytes[j] : "··");
      if (mapped) cell.addEventListener("click", () => whoWrote(a));
      row.append(cell);
      const c = parseInt(bytes[j], 16);
      ascii += mapped && c >= 32 && c < 127 ? String.fromCharCode(c) : ".";
    }
    row.append(el("span", { class: "dim" }, " " + ascii));
    box.append(row);
  }
}

async function whoWrote(addr) {
  S.watch = addr;
  const who = document.getElementById("who");
  try {
    const w = await Data.get("who-wrote", { step: S.shown, addr: hex(addr) });
    if (!w.write) {
      who.textContent = `${hex(addr)} still holds its initial value (watching it: w = next write)`;
      return;
    }
    const x = w.write;
    const where = x.source === "kernel" ? `the kernel (${x.syscall || "a syscall"})`
      : `${x.symbol || hex(x.rip)}${x.line ? " line " + x.line.line : ""}`;
    who.textContent = `${hex(addr)} was written by step ${x.step.toLocaleString()} (${where}); ` +
      "showing the state just after it (watching it: w = next write)";
    go(x.step + 1, "push");
  } catch (e) { notice(String(e.message || e)); }
}

function drawOutput(o) {
  const box = document.getElementById("output");
  box.textContent = "";
  for (const c of o.chunks) box.append(el("span", { class: `fd${c.fd}` }, c.text));
  if (!o.chunks.length) box.append(el("span", { class: "dim" }, "(nothing written yet)"));
}

function drawHeap(h) {
  const box = document.getElementById("heap");
  box.textContent = "";
  if (!h.available) { box.append(el("div", { class: "dim" }, h.reason)); return; }
  const live = h.blocks.filter(b => b.state === "live");
  box.append(el("div", { class: "dim" },
    `${plural(live.length, "live block")}, ${plural(h.blocks.length - live.length, "freed block")}, ` +
    `${plural(h.holes.length, "hole")}`));
  for (const b of h.blocks)
    box.append(el("div", { class: `block ${b.state}` }, hex(b.ptr), humanBytes(b.size),
      b.state, `from step ${b.alloc_step.toLocaleString()}`));
  for (const g of h.holes)
    box.append(el("div", { class: "block hole" }, hex(g.start), humanBytes(g.end - g.start),
      "hole", "freed, not reused"));
}

// -- the timeline strip ----------------------------------------------------------------
function buildTimeline() {
  const t = S.timeline;
  const div = document.getElementById("timeline");
  const traces = [
    { x: t.depth.step, y: t.depth.max, name: "stack depth (bytes)", mode: "lines",
      line: { shape: "hv", color: "#be123c" }, fill: "tozeroy", fillcolor: "rgba(190,18,60,.12)" },
    { x: t.brk.step.concat([t.steps]), y: t.brk.above_start.concat([t.brk.above_start.at(-1)]),
      name: "program break above its start (bytes)", mode: "lines", yaxis: "y2",
      line: { shape: "hv", color: "#15803d" } },
    { x: t.syscalls.map(s => s.step), y: t.syscalls.map(() => 0), name: "syscalls",
      mode: "markers", marker: { symbol: "triangle-up", size: 8, color: "#2563eb" },
      text: t.syscalls.map(s => `${s.name} → ${s.ret}`), hoverinfo: "text+x" },
    { x: t.calls.map(c => c.step), y: t.calls.map(c => c.kind === "call" ? -1 : -2),
      name: "calls / returns", mode: "markers", yaxis: "y3",
      marker: { symbol: t.calls.map(c => c.kind === "call" ? "triangle-down" : "triangle-up"),
        size: 5, color: t.calls.map(c => c.kind === "call" ? "#7c3aed" : "#a3a3a3") },
      text: t.calls.map(c => `${c.kind} ${c.symbol}`), hoverinfo: "text+x" },
  ];
  if (t.fault) traces.push({ x: [t.fault.step], y: [0], mode: "markers", name: "fault",
    marker: { symbol: "x", size: 12, color: "#b91c1c" },
    text: [`${t.fault.signal}: ${t.fault.cause}`], hoverinfo: "text+x" });
  const layout = {
    margin: { l: 50, r: 50, t: 6, b: 24 }, showlegend: true,
    legend: { orientation: "h", y: 1.15, font: { size: 10 } },
    xaxis: { range: [0, Math.max(t.steps, 1)], title: "" , fixedrange: true },
    yaxis: { title: { text: "depth", font: { size: 10 } }, fixedrange: true, rangemode: "tozero" },
    yaxis2: { overlaying: "y", side: "right", fixedrange: true, rangemode: "tozero",
      visible: t.brk.above_start.some(v => v !== 0),
      title: { text: "break", font: { size: 10 } } },
    yaxis3: { overlaying: "y", visible: false, range: [-2.5, 8], fixedrange: true },
    shapes: [cursorShape(0)], dragmode: false,
  };
  Plotly.newPlot(div, traces, layout, { displayModeBar: false, responsive: true });
  // Click or drag anywhere on the strip to seek (not only on a point).
  let dragging = false;
  const toStep = ev => {
    const full = div._fullLayout;
    const x = full.xaxis.p2c(ev.clientX - div.getBoundingClientRect().left - full._size.l);
    return clamp(x);
  };
  div.addEventListener("mousedown", ev => { dragging = true; go(toStep(ev), "push"); });
  window.addEventListener("mousemove", ev => { if (dragging) go(toStep(ev)); });
  window.addEventListener("mouseup", () => { dragging = false; });
}

function cursorShape(step) {
  return { type: "line", xref: "x", yref: "paper", x0: step, x1: step, y0: 0, y1: 1,
    line: { color: "#111", width: 1.5 } };
}

function moveCursor(step) {
  const div = document.getElementById("timeline");
  if (div.layout) Plotly.relayout(div, { shapes: [cursorShape(step)] });
}

// -- controls ----------------------------------------------------------------------------
function play() {
  const btn = document.getElementById("play");
  if (S.playing) { clearInterval(S.playing); S.playing = null; btn.textContent = "▶"; return; }
  btn.textContent = "❚❚";
  const rate = Number(document.getElementById("speed").value);
  S.playing = setInterval(() => {
    // Never ahead of what is drawn: a slow answer slows the play, it does not queue.
    if (S.busy) return;
    if (S.target >= S.meta.steps) { play(); return; }
    go(S.target + 1);
  }, 1000 / rate);
}

function bindControls() {
  const slider = document.getElementById("slider");
  slider.max = S.meta.steps;
  slider.addEventListener("input", () => go(Number(slider.value)));
  slider.addEventListener("change", () => go(Number(slider.value), "push"));
  const on = (id, fn) => document.getElementById(id).addEventListener("click", fn);
  on("home", () => go(0, "push"));
  on("end", () => go(S.meta.steps, "push"));
  on("back", () => go(S.target - 1));
  on("fwd", () => go(S.target + 1));
  on("back100", () => go(S.target - 100));
  on("fwd100", () => go(S.target + 100));
  on("play", play);
  document.getElementById("speed").addEventListener("change", () => {
    if (S.playing) { play(); play(); }
  });
  const gotoBox = document.getElementById("goto");
  gotoBox.addEventListener("keydown", ev => {
    if (ev.key !== "Enter") return;
    const n = Number(gotoBox.value.replace(/[,_ ]/g, ""));
    if (Number.isInteger(n)) go(n, "push"); else notice(`${gotoBox.value} is not a step`);
  });
  const memBox = document.getElementById("mem-addr");
  memBox.addEventListener("keydown", ev => {
    if (ev.key !== "Enter") return;
    S.memAddr = memBox.value.trim() || null;
    S.shown = -1;
    pump();
  });
  document.addEventListener("keydown", ev => {
    if (ev.target.tagName === "INPUT" && ev.target.type === "text") return;
    if (ev.target.tagName === "SELECT") return;
    const k = ev.key;
    const n = ev.shiftKey ? 100 : 1;
    if (k === "ArrowRight") go(S.target + n);
    else if (k === "ArrowLeft") go(S.target - n);
    else if (k === "Home") go(0, "push");
    else if (k === "End") go(S.meta.steps, "push");
    else if (k === "c") seek("call", "next");
    else if (k === "C") seek("call", "prev");
    else if (k === "r") seek("ret", "next");
    else if (k === "R") seek("ret", "prev");
    else if (k === "s") seek("syscall", "next");
    else if (k === "S") seek("syscall", "prev");
    else if (k === "w") seek("write", "next");
    else if (k === "W") seek("write", "prev");
    else if (k === " ") play();
    else return;
    ev.preventDefault();
  });
  window.addEventListener("popstate", ev => {
    const step = ev.state ? ev.state.step : stepFromUrl();
    S.target = clamp(step);
    slider.value = S.target;
    pump();
  });
}

function stepFromUrl() {
  const n = Number(new URLSearchParams(location.search).get("step") || 0);
  return Number.isFinite(n) ? n : 0;
}

async function main() {
  try {
    S.meta = await Data.get("meta");
  } catch (e) { notice(String(e.message || e)); return; }
  document.getElementById("program").textContent = S.meta.program;
  document.getElementById("steps").textContent = S.meta.steps.toLocaleString();
  const end = S.meta.end;
  document.getElementById("ending").textContent = !end ? "(recording incomplete)"
    : end.fault ? `ended by ${end.fault.signal} at step ${end.fault.step.toLocaleString()}`
    : end.exit_code !== null ? `exited with ${end.exit_code}` : `stopped: ${end.stop_reason}`;
  S.memAddr = hex(S.meta.initial_rsp - 128);
  document.getElementById("mem-addr").value = S.memAddr;
  bindControls();
  go(stepFromUrl());
  // The whole-run documents take seconds on a big trace: the step is drawn meanwhile.
  Data.get("source").then(src => {
    S.source = src;
    buildSource();
    if (S.lastState) { drawSource(S.lastState); draw(S.lastView); }
  }).catch(e => notice(String(e.message || e)));
  Data.get("timeline").then(t => {
    S.timeline = t;
    buildTimeline();
    moveCursor(S.shown < 0 ? 0 : S.shown);
  }).catch(e => notice(String(e.message || e)));
}

main();
