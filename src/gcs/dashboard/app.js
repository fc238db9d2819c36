// Loom's dashboard: one page per hash (#/cluster, #/jobs/ID, ...), each
// drawn from the head's JSON (/api/dashboard/*, /api/jobs/*) and asked
// again every 2 s while it is shown; logs follow once a second. Every list
// is paged by the head. Text from the cluster goes in as text, never HTML.
"use strict";

const REFRESH_MS = 2000;
const FOLLOW_MS = 1000;
const PAGE = 50;

// ---- building the page ----

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

function table(columns, rows, opts) {
  // columns: [{title, num, sort, narrow}], rows: [[cell, ...]]
  opts = opts || {};
  const head = h("tr", {}, columns.map((c) => {
    const cls = [c.num ? "num" : "", c.narrow ? "hide-narrow" : ""].join(" ").trim() || null;
    let label = c.title;
    let sort = null;
    if (c.sort && opts.onSort) {
      const active = opts.sort === c.sort;
      sort = active ? (opts.desc ? "descending" : "ascending") : "none";
      label = h("button", {type: "button", onclick: () => opts.onSort(c.sort)},
                c.title + (active ? (opts.desc ? " ▼" : " ▲") : ""));
    }
    return h("th", {scope: "col", class: cls, "aria-sort": sort}, label);
  }));
  const body = rows.length ? rows.map((r) => h("tr", {}, r.map((cell, i) => {
    const c = columns[i];
    const cls = [c.num ? "num" : "", c.narrow ? "hide-narrow" : ""].join(" ").trim() || null;
    return h("td", {class: cls}, cell);
  }))) : [h("tr", {}, h("td", {colspan: columns.length, class: "muted"}, opts.empty || "None."))];
  return h("div", {class: "table-wrap"},
           h("table", {}, opts.caption ? h("caption", {class: "muted"}, opts.caption) : null,
             h("thead", {}, head), h("tbody", {}, body)));
}

function pager(total, offset, go) {
  const last = Math.min(offset + PAGE, total);
  return h("div", {class: "pager"},
    h("button", {type: "button", disabled: offset <= 0, onclick: () => go(Math.max(0, offset - PAGE))}, "Previous"),
    h("span", {}, total ? `${offset + 1}–${last} of ${total}` : "0 of 0"),
    h("button", {type: "button", disabled: last >= total, onclick: () => go(offset + PAGE)}, "Next"));
}

function card(value, label) {
  return h("div", {class: "card"}, h("div", {class: "value"}, value), h("div", {class: "label"}, label));
}

function fields(pairs) {
  return h("dl", {class: "fields"}, pairs.map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function state(s) { return h("span", {class: "state-" + s}, s); }
function short(id) { return id ? h("span", {class: "id", title: id}, id.slice(0, 12)) : "—"; }
function link(href, text) { return h("a", {href}, text); }

function bytes(n) {
  if (!n) return "0 B";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
}

function when(ms) {
  if (!ms) return "—";
  return new Date(ms).toLocaleString();
}

function ms(v) { return v ? `${Number(v).toFixed(1)} ms` : "—"; }

function meter(used, total, text) {
  if (!total) return "—";
  return h("span", {}, h("meter", {min: 0, max: total, value: used, "aria-label": text}), " ", text);
}

function resources(r) {
  return Object.entries(r || {}).map(([k, v]) => `${k}: ${Number(v.toFixed ? v.toFixed(2) : v)}`).join(", ") || "—";
}

// Resources used of total; those a placement group's bundles make
// (CPU_group_..., bundle_group_...) are on its page, not here.
function used(total, available) {
  return Object.keys(total || {}).filter((k) => !k.includes("_group_")).map((k) => {
    const t = total[k], a = (available || {})[k] || 0;
    return k === "memory" || k === "object_store_memory"
      ? `${k}: ${bytes(t - a)} / ${bytes(t)}`
      : `${k}: ${+(t - a).toFixed(2)} / ${+t.toFixed(2)}`;
  }).join(", ") || "—";
}

// A line chart of the last hour: series [{name, points: [[t_ms, v]]}],
// values from 0 to max (a fixed max: percentages), as an SVG the page draws.
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

function chart(title, series, opts) {
  // From the first sample (a young cluster fills the width) to now.
  const W = 320, H = 110, now = Date.now();
  const first = Math.min(now - 60 * 1000, ...series.flatMap((s) => s.points.map((p) => p[0])));
  const from = Math.max(now - 3600 * 1000, first);
  const all = series.flatMap((s) => s.points.map((p) => p[1]));
  const max = opts.max || Math.max(1, ...all) * 1.1;
  const x = (t) => ((t - from) / (now - from)) * W;
  const y = (v) => H - (Math.min(v, max) / max) * H;
  const last = series.map((s) => `${s.name} ${s.points.length ? opts.format(s.points[s.points.length - 1][1]) : "—"}`).join(", ");
  const pic = svg("svg", {viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}, the last hour: now ${last}`, class: "chart"});
  pic.append(svg("rect", {x: 0, y: 0, width: W, height: H, class: "chart-bg"}));
  series.forEach((s, i) => {
    if (s.points.length < 2) return;
    pic.append(svg("polyline", {class: `s${i}`, fill: "none", "stroke-width": 1.5,
                                points: s.points.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`).join(" ")}));
  });
  return h("figure", {class: "chart-box"}, h("figcaption", {}, title), pic,
           h("div", {class: "legend"}, series.map((s, i) => h("span", {class: `s${i}`}, "■ ", s.name, ": ",
             s.points.length ? opts.format(s.points[s.points.length - 1][1]) : "—")),
             h("span", {class: "muted"}, ` (max ${opts.format(max)})`)));
}

const history = {samples: []};

async function historyCharts() {
  const since = history.samples.length ? history.samples[history.samples.length - 1].t_ms : Date.now() - 3600 * 1000;
  const got = await api("/api/dashboard/history" + query({since_ms: since}));
  history.samples = history.samples.concat(got.samples).filter((s) => s.t_ms > Date.now() - 3600 * 1000);
  const ss = history.samples;
  const rate = (key) => ss.slice(1).map((s, i) => [s.t_ms, Math.max(0, (s[key] - ss[i][key]) / ((s.t_ms - ss[i].t_ms) / 1000))]);
  const pct = (used, total) => ss.filter((s) => s[total] > 0).map((s) => [s.t_ms, (100 * s[used]) / s[total]]);
  const percent = (v) => `${v.toFixed(0)}%`;
  const perSecond = (v) => `${v.toFixed(v < 10 ? 1 : 0)}/s`;
  const charts = [
    chart("Tasks per second", [{name: "finished", points: rate("tasks_finished")},
                               {name: "failed", points: rate("tasks_failed")}], {format: perSecond}),
    chart("Resources in use", [{name: "CPU", points: pct("cpu_used", "cpu_total")},
                               {name: "GPU", points: pct("gpu_used", "gpu_total")}], {max: 100, format: percent}),
    chart("Memory and object store", [{name: "memory", points: pct("mem_used", "mem_total")},
                                      {name: "object store", points: pct("store_used", "store_capacity")}], {max: 100, format: percent}),
  ];
  if (ss.some((s) => s.gpu_total > 0)) {
    charts.push(chart("GPU busy (mean)", [{name: "GPUs", points: ss.filter((s) => s.machine).map((s) => [s.t_ms, s.gpu_percent])}],
                      {max: 100, format: percent}));
  }
  return h("div", {class: "charts"}, charts);
}

// ---- asking the head ----

async function api(path, options) {
  const r = await fetch(path, Object.assign({credentials: "same-origin"}, options || {}));
  if (r.status === 401) { location.href = "/"; throw new Error("signed out"); }
  const text = await r.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch (e) { body = {error: text}; }
  if (!r.ok) throw new Error((body && body.error) || `${r.status} ${r.statusText}`);
  return body;
}

function query(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== "" && v !== null && v !== undefined) q.set(k, v);
  const s = q.toString();
  return s ? "?" + s : "";
}

// Appends to a followed log; it stays scrolled to the end if it was there.
function appendFollowing(pre, text) {
  const bottom = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  pre.append(text);
  if (bottom) pre.scrollTop = pre.scrollHeight;
}

function setStatus(text, bad) {
  const el = document.getElementById("status");
  el.textContent = text || "";
  el.className = bad ? "error" : "";
}

// ---- the router: #/page/id?k=v ----

let current = null;  // {timer, follow, stopped}

function route() {
  const hash = location.hash.replace(/^#/, "") || "/cluster";
  const [path, qs] = hash.split("?");
  const parts = path.split("/").filter(Boolean);
  const params = Object.fromEntries(new URLSearchParams(qs || ""));
  return {page: parts[0] || "cluster", id: parts[1] ? decodeURIComponent(parts[1]) : "", params};
}

function go(page, id, params) {
  location.hash = "#/" + page + (id ? "/" + encodeURIComponent(id) : "") + query(params || {});
}

function show() {
  if (current) { current.stopped = true; clearTimeout(current.timer); clearTimeout(current.follow); }
  const r = route();
  const view = PAGES[r.page];
  for (const a of document.querySelectorAll("nav a")) {
    if (a.getAttribute("href") === "#/" + r.page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const main = document.getElementById("view");
  const self = {stopped: false, once: false, timer: null, follow: null};
  current = self;
  if (!view) { main.replaceChildren(h("h1", {}, "No such page")); return; }
  let first = true;
  const draw = async () => {
    if (self.stopped) return;
    if (document.hidden) { self.timer = setTimeout(draw, REFRESH_MS); return; }
    try {
      const content = await view(r, self);
      if (self.stopped) return;
      if (content) {
        // Keep what the person is typing in a filter across refreshes.
        const focused = document.activeElement && document.activeElement.id;
        main.replaceChildren(...[content].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
        if (focused && document.getElementById(focused)) document.getElementById(focused).focus();
      }
      setStatus(`Updated ${new Date().toLocaleTimeString()}`);
      if (first) { document.title = `Loom: ${r.page}`; first = false; }
    } catch (e) {
      if (!self.stopped) setStatus(`Could not load: ${e.message}`, true);
    }
    // A page that follows something (a log) draws once and follows on.
    if (!self.stopped && !self.once) self.timer = setTimeout(draw, REFRESH_MS);
  };
  draw();
}

// ---- pages ----

// The operator's Grafana and Prometheus (loom start --grafana-url,
// --prometheus-url), when the head was told of them.
function metricsLinks(links) {
  const out = [];
  for (const [name, url] of [["Grafana", links && links.grafana], ["Prometheus", links && links.prometheus]]) {
    if (!url || !/^https?:\/\//.test(url)) continue;
    out.push(out.length ? " · " : "", h("a", {href: url, target: "_blank", rel: "noopener noreferrer"}, `${name} ↗`));
  }
  return out.length ? h("p", {class: "links"}, "Metrics: ", out) : null;
}

async function clusterPage(r) {
  const offset = +r.params.offset || 0;
  const c = await api("/api/dashboard/cluster" + query({offset, limit: PAGE}));
  const gpus = (n) => (n.machine && n.machine.gpus.length)
    ? n.machine.gpus.map((g) => `GPU ${g.index}: ${g.utilization_percent.toFixed(0)}%, ${bytes(g.memory_used)} / ${bytes(g.memory_total)}`).join("; ")
    : "—";
  const rows = c.nodes.map((n) => {
    const m = n.machine;
    return [
      short(n.node_id), n.host, state(n.state),
      m ? meter(m.cpu_percent, 100, `${m.cpu_percent.toFixed(0)}% of ${m.cpus}`) : (n.error || "—"),
      m ? meter(m.mem_used, m.mem_total, `${bytes(m.mem_used)} / ${bytes(m.mem_total)}`) : "—",
      m ? meter(m.disk_used, m.disk_total, `${bytes(m.disk_used)} / ${bytes(m.disk_total)}`) : "—",
      gpus(n),
      used(n.total, n.available),
      n.workers ? `${n.workers.leased} leased, ${n.workers.idle} idle, ${n.workers.starting} starting` : "—",
      n.store ? `${bytes(n.store.used)} / ${bytes(n.store.capacity)}` : "—",
      [...n.pending, ...n.infeasible].length
        ? `${n.pending.reduce((s, d) => s + d.count, 0)} pending, ${n.infeasible.reduce((s, d) => s + d.count, 0)} infeasible`
        : "—",
    ];
  });
  const demands = (list) => list.map((d) => [resources(d.shape), d.count]);
  return [
    h("h1", {}, "Cluster"),
    h("div", {class: "cards"},
      card(`${c.alive_nodes} / ${c.total_nodes}`, "nodes alive"),
      card(used(c.resources.total, c.resources.available), "resources used"),
      card(c.pending.reduce((s, d) => s + d.count, 0), "demands pending"),
      card(c.infeasible.reduce((s, d) => s + d.count, 0), "demands infeasible")),
    metricsLinks(c.links),
    h("h2", {}, "The last hour"),
    await historyCharts(),
    h("p", {class: "muted"}, "Sampled by the head every 10 s; memory and stores while someone looks at this dashboard."),
    h("h2", {}, "Nodes"),
    table([{title: "Node"}, {title: "Address"}, {title: "State"}, {title: "CPU"}, {title: "Memory"},
           {title: "Disk", narrow: true}, {title: "GPUs", narrow: true}, {title: "Resources used"},
           {title: "Workers", narrow: true}, {title: "Object store"}, {title: "Demands", narrow: true}], rows),
    pager(c.total_nodes, offset, (o) => go("cluster", "", {offset: o})),
    h("h2", {}, "Pending demands"),
    table([{title: "Shape"}, {title: "Count", num: true}], demands(c.pending), {empty: "No task or actor waits for resources."}),
    h("h2", {}, "Infeasible demands"),
    table([{title: "Shape"}, {title: "Count", num: true}], demands(c.infeasible), {empty: "Every demand fits some node."}),
    c.erased_dead ? h("p", {class: "muted"}, `${c.erased_dead} dead nodes are no longer kept.`) : null,
  ];
}

async function jobsPage(r) {
  const offset = +r.params.offset || 0;
  const j = await api("/api/dashboard/jobs" + query({offset, limit: PAGE}));
  const rows = j.jobs.map((x) => [
    x.job_id ? link(`#/jobs/${x.job_id}`, x.job_id) : link(`#/jobs/${encodeURIComponent(x.submission_id)}`, x.submission_id),
    x.submission_id || "—",
    state(x.status || x.state),
    h("code", {}, x.entrypoint || "(driver)"),
    when(x.start_ms), x.end_ms ? when(x.end_ms) : "—",
    short(x.driver_node_id), x.owner || "—",
  ]);
  return [
    h("h1", {}, "Jobs"),
    table([{title: "Job"}, {title: "Submission"}, {title: "State"}, {title: "Entrypoint"},
           {title: "Started"}, {title: "Ended", narrow: true}, {title: "Driver node", narrow: true},
           {title: "Owner", narrow: true}], rows, {empty: "No jobs yet."}),
    pager(j.total, offset, (o) => go("jobs", "", {offset: o})),
  ];
}

// A job's page: found by its job id (hex) or its submission id.
async function jobPage(r, self) {
  const all = await api("/api/dashboard/jobs" + query({limit: 500}));
  const job = all.jobs.find((x) => x.job_id === r.id || x.submission_id === r.id);
  if (!job) return [h("h1", {}, `Job ${r.id}`), h("p", {class: "error"}, "No such job (or it is older than the last 500).")];
  let detail = null;
  if (job.submission_id) {
    try { detail = await api(`/api/jobs/${encodeURIComponent(job.submission_id)}`); } catch (e) { detail = null; }
  }
  const running = detail ? (detail.status === "RUNNING" || detail.status === "PENDING") : job.state === "RUNNING";
  const stop = job.submission_id && running
    ? h("button", {type: "button", class: "danger", onclick: async () => {
        if (!confirm(`Stop job ${job.submission_id}?`)) return;
        try {
          await api(`/api/jobs/${encodeURIComponent(job.submission_id)}/stop`,
                    {method: "POST", headers: {"X-Loom-Dashboard": "1"}});
          setStatus(`Asked job ${job.submission_id} to stop.`);
        } catch (e) { setStatus(`Could not stop: ${e.message}`, true); }
      }}, "Stop job")
    : null;
  const out = [
    h("h1", {}, `Job ${job.job_id || job.submission_id}`),
    fields([
      ["State", state((detail && detail.status) || job.state)],
      ["Entrypoint", h("code", {}, job.entrypoint || "(a driver started directly)")],
      ["Submission", job.submission_id || "—"],
      ["Started", when(job.start_ms)], ["Ended", job.end_ms ? when(job.end_ms) : "—"],
      ["Driver node", job.driver_node_id || "—"], ["Owner", job.owner || "—"],
      ["Message", (detail && detail.message) || "—"],
    ]),
    stop,
    job.job_id ? h("p", {}, link(`#/tasks?job_id=${job.job_id}`, "Its tasks"), " · ",
                  link(`#/actors?job=${job.job_id}`, "Its actors")) : null,
  ];
  if (!job.submission_id) return out;
  // The output follows on its own timer; this page is not redrawn.
  self.once = true;
  const pre = h("pre", {class: "log", id: "job-log", "aria-label": "Job output"});
  out.push(h("h2", {}, "Output"), pre);
  let at = 0;
  const follow = async () => {
    if (self.stopped) return;
    try {
      const l = await api(`/api/jobs/${encodeURIComponent(job.submission_id)}/logs?offset=${at}`);
      if (l.logs) appendFollowing(pre, l.logs);
      at = l.offset;
    } catch (e) { setStatus(`Output: ${e.message}`, true); }
    if (!self.stopped) self.follow = setTimeout(follow, FOLLOW_MS);
  };
  follow();
  return out;
}

async function actorsPage(r) {
  const p = r.params;
  const offset = +p.offset || 0;
  const a = await api("/api/dashboard/actors" + query({state: p.state, q: p.q, job: p.job, node: p.node,
                                                       sort: p.sort, desc: p.desc, offset, limit: PAGE}));
  const set = (changes) => go("actors", "", Object.assign({}, p, {offset: 0}, changes));
  const stateSelect = h("select", {id: "actor-state", onchange: (e) => set({state: e.target.value})},
    ["", "ALIVE", "PENDING", "RESTARTING", "DEAD"].map((s) =>
      h("option", {value: s, selected: (p.state || "") === s}, s || "any")));
  const text = h("input", {id: "actor-q", type: "search", value: p.q || "", placeholder: "class, name or id",
                           onchange: (e) => set({q: e.target.value})});
  const rows = a.actors.map((x) => [
    link(`#/actors/${x.actor_id}`, x.actor_id.slice(0, 12)), x.class_name, x.name || "—", state(x.state),
    short(x.node_id), x.pid || "—", x.num_restarts, short(x.job_id), x.death_cause || "—",
  ]);
  const counts = Object.entries(a.counts).map(([s, n]) => `${n} ${s.toLowerCase()}`).join(", ");
  return [
    h("h1", {}, "Actors"),
    h("p", {class: "muted"}, counts || "No actors yet."),
    h("div", {class: "filters"}, h("label", {}, "State", stateSelect), h("label", {}, "Search", text)),
    table([{title: "Actor", sort: "id"}, {title: "Class", sort: "class"}, {title: "Name", sort: "name"},
           {title: "State", sort: "state"}, {title: "Node", sort: "node", narrow: true}, {title: "PID", sort: "pid", num: true, narrow: true},
           {title: "Restarts", sort: "restarts", num: true}, {title: "Job", narrow: true}, {title: "Death cause"}],
          rows, {sort: p.sort, desc: p.desc === "1", empty: "No actor matches.",
                 onSort: (s) => set({sort: s, desc: p.sort === s && p.desc !== "1" ? "1" : ""})}),
    pager(a.total, offset, (o) => go("actors", "", Object.assign({}, p, {offset: o}))),
    a.erased_dead ? h("p", {class: "muted"}, `${a.erased_dead} dead actors are no longer kept.`) : null,
  ];
}

async function actorPage(r, self) {
  const d = await api(`/api/dashboard/actors/${encodeURIComponent(r.id)}`);
  const x = d.actor;
  const calls = d.calls.map((t) => [t.name, state(t.state), ms(t.run_end_us && t.run_start_us ? (t.run_end_us - t.run_start_us) / 1000 : 0),
                                    t.error_message ? h("pre", {}, t.error_message) : "—"]);
  return [
    h("h1", {}, `Actor ${x.class_name}${x.name ? " “" + x.name + "”" : ""}`),
    fields([
      ["Id", h("code", {}, x.actor_id)], ["State", state(x.state)], ["Namespace", x.namespace || "—"],
      ["Job", x.job_id ? link(`#/jobs/${x.job_id}`, x.job_id) : "—"],
      ["Node", x.node_id ? link(`#/logs?node=${x.node_id}`, x.node_id) : "—"], ["PID", x.pid || "—"],
      ["Restarts", `${x.num_restarts} of ${x.max_restarts < 0 ? "unlimited" : x.max_restarts}`],
      [x.state === "ALIVE" ? "Resources held" : "Resources (held while alive)", resources(d.resources)],
      ["Detached", x.detached ? "yes" : "no"], ["Death cause", x.death_cause || "—"],
      ["Ended", x.end_time_ms ? when(x.end_time_ms) : "—"],
    ]),
    h("h2", {}, `Calls (latest ${d.calls.length} of ${d.calls_total})`),
    table([{title: "Method"}, {title: "State"}, {title: "Ran", num: true}, {title: "Error"}], calls, {empty: "No calls recorded."}),
    h("h2", {}, "Output"),
    actorOutput(x, self),
    x.node_id && x.pid ? h("p", {}, link(`#/logs?node=${x.node_id}&pid=${x.pid}`, "Its node's log files")) : null,
  ];
}

// What the actor's process printed: its "(pid=N) " lines in its job's
// Python output files and its own C++ output files on its node (as `loom
// logs --actor-id` reads them), the last 64 KiB of each, then followed
// once a second while it lives. Kept across the page's redraws.
function actorOutput(x, self) {
  if (self.output) return self.output;
  const pre = h("pre", {class: "log", id: "actor-log", "aria-label": "Actor output"});
  self.output = pre;
  if (!x.node_id || !x.pid || !x.job_id) {
    pre.append("(no process yet)");
    return pre;
  }
  const prefix = `(pid=${x.pid}) `;
  const files = [`python-${x.job_id}.out`, `python-${x.job_id}.err`,
                 `cpp-${x.job_id}-${x.pid}.out`, `cpp-${x.job_id}-${x.pid}.err`];
  const next = {};     // file -> where the next read starts
  const partial = {};  // file -> its unfinished last line
  const alive = x.state !== "DEAD";
  let present = [];    // which of them exist, asked again every 10 s
  let round = 0;
  const follow = async () => {
    if (self.stopped) return;
    let text = "";
    try {
      if (round++ % 10 === 0) {
        const l = await api("/api/dashboard/logs" + query({node: x.node_id, q: x.job_id, files: 500}));
        const names = new Set(l.nodes.flatMap((n) => n.files.map((f) => f.name)));
        present = files.filter((f) => names.has(f));
      }
    } catch (e) { setStatus(`Output: ${e.message}`, true); }
    for (const name of present) {
      let l;
      try {
        l = await api("/api/dashboard/log" + query({node: x.node_id, name, offset: name in next ? next[name] : -65536}));
      } catch (e) {
        setStatus(`Output: ${e.message}`, true);
        continue;
      }
      let data = (partial[name] || "") + (l.data || "");
      // Read from within the file: its first line may be cut.
      if (!(name in next) && l.offset > 0) data = data.slice(data.indexOf("\n") + 1);
      next[name] = l.next;
      const cut = data.lastIndexOf("\n") + 1;
      partial[name] = data.slice(cut);
      for (const line of data.slice(0, cut).split("\n").slice(0, -1)) {
        if (!name.startsWith("python-")) text += line + "\n";
        else if (line.startsWith(prefix)) text += line.slice(prefix.length) + "\n";
      }
    }
    if (text) appendFollowing(pre, text);
    if (!self.stopped && alive) self.follow = setTimeout(follow, FOLLOW_MS);
  };
  follow();
  return pre;
}

// A Chrome trace (chrome://tracing, ui.perfetto.dev) of task records.
function traceOf(tasks) {
  const events = [];
  for (const t of tasks) {
    if (!t.run_start_us || !t.run_end_us) continue;
    events.push({name: t.name, cat: t.type, ph: "X", ts: t.run_start_us, dur: t.run_end_us - t.run_start_us,
                 pid: t.node_id.slice(0, 8), tid: t.pid, args: {task_id: t.task_id, state: t.state}});
  }
  return JSON.stringify({traceEvents: events});
}

async function tasksPage(r) {
  const p = r.params;
  const offset = +p.offset || 0;
  const filters = {job_id: p.job_id, state: p.state, name: p.name};
  const [summary, failed, list] = await Promise.all([
    api("/api/dashboard/tasks/summary" + query({job_id: p.job_id})),
    api("/api/dashboard/tasks" + query({job_id: p.job_id, state: "FAILED", limit: 10})),
    api("/api/dashboard/tasks" + query(Object.assign({}, filters, {offset, limit: PAGE}))),
  ]);
  const set = (changes) => go("tasks", "", Object.assign({}, p, {offset: 0}, changes));
  const n = (f, s) => f.states[s] || 0;
  const sumRows = summary.functions.map((f) => [
    f.name, f.type.replace("_TASK", "").toLowerCase(),
    n(f, "PENDING_ARGS_AVAIL") + n(f, "PENDING_NODE_ASSIGNMENT") + n(f, "SUBMITTED_TO_WORKER"),
    n(f, "RUNNING"), n(f, "FINISHED"), n(f, "FAILED"),
    ms(f.queued_p50_ms), ms(f.queued_p95_ms), ms(f.queued_p99_ms),
    ms(f.run_p50_ms), ms(f.run_p95_ms), ms(f.run_p99_ms),
  ]);
  const failedRows = failed.tasks.map((t) => [
    t.name, short(t.task_id), short(t.job_id), t.error_type || "—", h("pre", {}, t.error_message || "—"),
  ]);
  const listRows = list.tasks.map((t) => [
    t.name, short(t.task_id), state(t.state), short(t.job_id), short(t.node_id), t.pid || "—",
    ms(t.run_end_us && t.run_start_us ? (t.run_end_us - t.run_start_us) / 1000 : 0),
  ]);
  const stateSelect = h("select", {id: "task-state", onchange: (e) => set({state: e.target.value})},
    ["", "PENDING_ARGS_AVAIL", "PENDING_NODE_ASSIGNMENT", "SUBMITTED_TO_WORKER", "RUNNING", "FINISHED", "FAILED"]
      .map((s) => h("option", {value: s, selected: (p.state || "") === s}, s || "any")));
  const download = h("button", {type: "button", onclick: async () => {
    const all = await api("/api/dashboard/tasks" + query({job_id: p.job_id, limit: 500}));
    const a = h("a", {href: URL.createObjectURL(new Blob([traceOf(all.tasks)], {type: "application/json"})),
                      download: `loom-timeline${p.job_id ? "-" + p.job_id : ""}.json`});
    document.body.append(a); a.click(); a.remove();
  }}, "Download timeline (Chrome trace)");
  return [
    h("h1", {}, p.job_id ? `Tasks of job ${p.job_id}` : "Tasks"),
    h("h2", {}, "By function"),
    table([{title: "Function"}, {title: "Kind", narrow: true}, {title: "Waiting", num: true}, {title: "Running", num: true},
           {title: "Finished", num: true}, {title: "Failed", num: true},
           {title: "Queued p50", num: true, narrow: true}, {title: "p95", num: true, narrow: true}, {title: "p99", num: true, narrow: true},
           {title: "Ran p50", num: true}, {title: "p95", num: true}, {title: "p99", num: true}], sumRows, {empty: "No tasks yet."}),
    h("h2", {}, `Failed (latest ${failed.tasks.length} of ${failed.total})`),
    table([{title: "Function"}, {title: "Task"}, {title: "Job", narrow: true}, {title: "Error"}, {title: "Message and traceback"}],
          failedRows, {empty: "No task failed."}),
    h("h2", {}, "Task records"),
    h("div", {class: "filters"},
      h("label", {}, "State", stateSelect),
      h("label", {}, "Function", h("input", {id: "task-name", type: "search", value: p.name || "", onchange: (e) => set({name: e.target.value})})),
      h("label", {}, "Job", h("input", {id: "task-job", type: "search", value: p.job_id || "", size: 10, onchange: (e) => set({job_id: e.target.value})})),
      download),
    table([{title: "Function"}, {title: "Task"}, {title: "State"}, {title: "Job", narrow: true}, {title: "Node", narrow: true},
           {title: "PID", num: true, narrow: true}, {title: "Ran", num: true}], listRows, {empty: "No task matches."}),
    pager(list.total, offset, (o) => go("tasks", "", Object.assign({}, p, {offset: o}))),
    list.evicted ? h("p", {class: "muted"}, `${list.evicted} older records were evicted (counts above still include them).`) : null,
  ];
}

// As the owner counts them: its own and those lent to other processes.
function references(x) {
  const r = x.references;
  if (!r) return x.references_error || "—";
  const lent = r.borrowers ? `, ${r.borrowed_units} lent to ${r.borrowers} other process${r.borrowers > 1 ? "es" : ""}` : "";
  return `${r.total}${lent}`;
}

async function objectsPage(r) {
  const offset = +r.params.offset || 0;
  const o = await api("/api/dashboard/objects" + query({offset, limit: 20}));
  const out = [h("h1", {}, "Objects")];
  const rows = o.nodes.map((n) => n.store
    ? [short(n.node_id), n.host, meter(n.store.used, n.store.capacity, `${bytes(n.store.used)} / ${bytes(n.store.capacity)}`),
       n.store.objects, n.store.pinned, `${bytes(n.store.spilled_bytes)} (${n.store.spilled_objects} objects)`]
    : [short(n.node_id), n.host || "—", n.error || "—", "—", "—", "—"]);
  out.push(table([{title: "Node"}, {title: "Address"}, {title: "Store used"}, {title: "Objects", num: true},
                  {title: "Pinned", num: true}, {title: "Spilled"}], rows));
  for (const n of o.nodes) {
    if (!n.largest_objects || !n.largest_objects.length) continue;
    out.push(h("h2", {}, `Largest objects on ${n.host}`),
             table([{title: "Object"}, {title: "Size", num: true}, {title: "Owner"}, {title: "References"},
                    {title: "Copy"}, {title: "Pinned"}],
                   n.largest_objects.map((x) => [h("code", {}, x.object_id), bytes(x.size), x.owner || "—",
                                                 references(x), x.primary ? "primary" : "secondary",
                                                 x.pinned ? "yes" : "no"])));
  }
  return out;
}

async function groupsPage() {
  const g = await api("/api/dashboard/placement_groups");
  return [
    h("h1", {}, "Placement groups"),
    table([{title: "Group"}, {title: "Name"}, {title: "Strategy"}, {title: "State"}, {title: "Bundles"}, {title: "Job", narrow: true}, {title: "Message"}],
          g.placement_groups.map((x) => [short(x.pg_id), x.name || "—", x.strategy, state(x.state),
            x.bundles.map((b) => `{${resources(b.resources)}}${b.node_id ? " on " + b.node_id.slice(0, 8) : ""}`).join(" "),
            short(x.job_id), x.message || "—"]), {empty: "No placement groups."}),
  ];
}

async function logsPage(r, self) {
  const p = r.params;
  if (p.node && p.name) return logFile(p, self);
  // 10 nodes a page (or one), each with its 50 newest files, filtered by name.
  const offset = +p.offset || 0;
  const l = await api("/api/dashboard/logs" + query({node: p.node, q: p.q || p.pid, offset, files: 50}));
  const out = [h("h1", {}, "Logs"),
    h("div", {class: "filters"}, h("label", {}, "File name contains",
      h("input", {id: "log-q", type: "search", value: p.q || p.pid || "",
                  onchange: (e) => go("logs", "", {node: p.node, q: e.target.value})})))];
  for (const n of l.nodes) {
    out.push(h("h2", {}, `${n.host} `, link(`#/logs?node=${n.node_id}`, n.node_id.slice(0, 12))));
    if (n.error) out.push(h("p", {class: "error"}, n.error));
    out.push(table([{title: "File"}, {title: "Size", num: true}, {title: "Changed", narrow: true}],
      n.files.map((f) => [link(`#/logs?node=${n.node_id}&name=${encodeURIComponent(f.name)}`, f.name), bytes(f.size), when(f.mtime_ms)]),
      {empty: "No files.", caption: `${n.files.length} newest of ${n.matching} matching (${n.total_files} files)`}));
  }
  if (!p.node) {
    out.push(h("div", {class: "pager"},
      h("button", {type: "button", disabled: offset <= 0, onclick: () => go("logs", "", {q: p.q, offset: Math.max(0, offset - 10)})}, "Previous nodes"),
      h("span", {}, `nodes ${Math.min(offset + 1, l.alive_nodes)}–${Math.min(offset + 10, l.alive_nodes)} of ${l.alive_nodes}`),
      h("button", {type: "button", disabled: offset + 10 >= l.alive_nodes, onclick: () => go("logs", "", {q: p.q, offset: offset + 10})}, "Next nodes")));
  }
  return out;
}

// One file, its last 64 KiB, then what is added to it, once a second.
function logFile(p, self) {
  self.once = true;
  const pre = h("pre", {class: "log", id: "log-file", "aria-label": p.name});
  let next = null;
  const follow = async () => {
    if (self.stopped) return;
    try {
      const l = await api("/api/dashboard/log" + query({node: p.node, name: p.name, offset: next === null ? -65536 : next}));
      if (l.data) appendFollowing(pre, l.data);
      next = l.next;
    } catch (e) { setStatus(`${p.name}: ${e.message}`, true); }
    if (!self.stopped) self.follow = setTimeout(follow, FOLLOW_MS);
  };
  follow();
  return [h("h1", {}, p.name), h("p", {}, link(`#/logs?node=${p.node}`, "Every file of this node")), pre];
}

// Requests per second come from the totals of two polls in a row.
const serveSeen = {t: 0, requests: {}};

async function servePage() {
  const s = await api("/api/dashboard/serve");
  const out = [h("h1", {}, "Serve")];
  if (!s.serving) return out.concat(h("p", {}, "Nothing is served (loom.serve.run starts it)."));
  if (s.error) return out.concat(h("p", {class: "error"}, s.error));
  const st = s.status;
  const dt = (st.t_ms - serveSeen.t) / 1000;
  const rates = {};
  const apps = Object.entries(st.applications || {});
  out.push(h("p", {class: "muted"}, `As the serve controller said at ${new Date(st.t_ms).toLocaleTimeString()}.`),
    table([{title: "Application"}, {title: "Status"}, {title: "Route"}, {title: "Ingress"}],
          apps.map(([name, a]) => [name, state(a.status), h("code", {}, a.route_prefix || "—"), a.ingress || "—"]),
          {empty: "No applications."}));
  for (const [name, a] of apps) {
    const rows = Object.entries(a.deployments || {}).map(([dname, d]) => {
      const key = `${name}#${dname}`;
      const total = d.stats.requests || 0;
      rates[key] = total;
      const before = serveSeen.requests[key];
      const rate = before !== undefined && dt > 0 && dt < 30 ? Math.max(0, (total - before) / dt) : null;
      const states = Object.entries(d.replica_states || {}).map(([k, n]) => `${n} ${k.toLowerCase()}`).join(", ");
      return [dname, state(d.status), `${d.target_replicas} (${states || "none"})`,
              rate === null ? "—" : rate.toFixed(1), ms(d.stats.p50_ms), ms(d.stats.p95_ms), ms(d.stats.p99_ms),
              d.stats.queued, d.stats.ongoing, (d.stats.codes || {})["503"] || 0, total, d.message || "—"];
    });
    out.push(h("h2", {}, `Deployments of ${name}`),
      table([{title: "Deployment"}, {title: "Status"}, {title: "Replicas"}, {title: "Requests/s", num: true},
             {title: "p50", num: true}, {title: "p95", num: true}, {title: "p99", num: true},
             {title: "Queued", num: true}, {title: "Running", num: true}, {title: "503s", num: true},
             {title: "Requests", num: true, narrow: true}, {title: "Message", narrow: true}], rows));
  }
  serveSeen.t = st.t_ms;
  serveSeen.requests = rates;
  const proxies = Object.values(st.proxies || {});
  out.push(h("h2", {}, "Proxies"),
    table([{title: "Node"}, {title: "Address"}, {title: "State"}],
          proxies.map((x) => [short(x.node_id), x.port ? `${x.node_ip}:${x.port}` : x.node_ip, state(x.state)]),
          {empty: "No proxies."}));
  return out;
}

const PAGES = {
  "cluster": clusterPage,
  "jobs": (r, self) => (r.id ? jobPage(r, self) : jobsPage(r)),
  "actors": (r, self) => (r.id ? actorPage(r, self) : actorsPage(r)),
  "tasks": tasksPage,
  "objects": objectsPage,
  "placement-groups": groupsPage,
  "logs": logsPage,
  "serve": servePage,
};

window.addEventListener("hashchange", show);
document.addEventListener("visibilitychange", () => { if (!document.hidden && current) show(); });
show();
