// photoarchive review app: list, synchronised viewer, keyboard decisions, retune. Text goes in by textContent only.
"use strict";
const $ = (id) => document.getElementById(id);
const PAGE = 100;
const state = { offset: 0, total: 0, items: [], index: -1, detail: null, config: null,
                zoom: { scale: 1, fit: 1, x: 0, y: 0, natural: [1, 1] }, retuned: null };

async function api(path, body) {
  const opts = body === undefined ? {} : { method: "POST", headers: { "Content-Type": "application/json" },
                                           body: JSON.stringify(body) };
  const response = await fetch(path, { credentials: "same-origin", ...opts });
  const data = await response.json();
  if (!response.ok) throw new Error(data.error || response.statusText);
  return data;
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "text") node.textContent = v; else if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function say(text, error = false) { const s = $("state"); s.textContent = text; s.className = error ? "error" : ""; }

// ---- list ---------------------------------------------------------------------------------------
function query() {
  const params = new URLSearchParams({ status: $("status").value, reason: $("reason").value, sort: $("sort").value,
                                       order: $("order").value, q: $("q").value, offset: state.offset, limit: PAGE });
  return "/api/photos?" + params.toString();
}

async function loadList(keep = false) {
  const data = await api(query());
  state.items = data.items; state.total = data.total;
  const counts = $("counts"); counts.replaceChildren();
  for (const [status, n] of Object.entries(data.counts)) {
    const b = el("button", { type: "button", text: `${status} ${n}` });
    b.addEventListener("click", () => { $("status").value = status; state.offset = 0; loadList(); });
    counts.append(b);
  }
  const reason = $("reason"), chosen = reason.value; reason.replaceChildren(el("option", { value: "", text: "any" }));
  for (const [kind, n] of Object.entries(data.reasons)) reason.append(el("option", { value: kind, text: `${kind} (${n})` }));
  reason.value = chosen;
  const list = $("list"); list.replaceChildren();
  data.items.forEach((item, i) => {
    const li = el("li", { tabindex: "-1", "aria-selected": "false", "data-photo": item.photo_id, role: "option" },
      ["processed", "review", "rejected"].includes(item.status)
        ? el("img", { src: `/thumb/${encodeURIComponent(item.photo_id)}/after`, alt: `result ${item.source}`,
                      loading: "lazy", width: "64", height: "64" })
        : el("span", { class: "nothumb", text: item.status }),
      el("div", {}, el("div", { class: "src", text: item.source }),
         el("span", { class: `badge ${item.status}`, text: item.status }), " ",
         item.decision ? el("span", { class: `badge ${item.decision}`, text: item.decision }) : "",
         el("div", { text: item.reasons.slice(0, 2).join("; ") })));
    li.addEventListener("click", () => select(i));
    list.append(li);
  });
  const last = Math.min(state.offset + PAGE, data.total);
  $("pageinfo").textContent = data.total ? `${state.offset + 1}–${last} of ${data.total}` : "nothing to review here";
  if (!keep || state.index >= state.items.length) state.index = -1;
  if (state.items.length) await select(Math.max(0, state.index));
}

async function select(i) {
  if (i < 0 || i >= state.items.length) return;
  state.index = i;
  for (const li of $("list").children) li.setAttribute("aria-selected", "false");
  const li = $("list").children[i]; li.setAttribute("aria-selected", "true"); li.scrollIntoView({ block: "nearest" });
  const item = state.items[i];
  document.body.dataset.photo = item.photo_id;
  const detail = await api(`/api/photo/${encodeURIComponent(item.photo_id)}`);
  if (document.body.dataset.photo !== item.photo_id) return;  // another photo was chosen meanwhile
  state.detail = detail;
  showDetail(detail);
}

async function step(delta) {
  const i = state.index + delta;
  if (i >= 0 && i < state.items.length) return select(i);
  const offset = state.offset + (delta > 0 ? PAGE : -PAGE);
  if (offset < 0 || offset >= state.total) return;
  state.offset = offset; await loadList(); if (delta < 0) await select(state.items.length - 1);
}

// ---- viewer -------------------------------------------------------------------------------------
function showDetail(d) {
  $("title").textContent = d.source;
  const decision = d.decision ? ` · decision: ${d.decision.decision} by ${d.decision.reviewer} ${d.decision.time}` : "";
  say(`status ${d.status} (QA: ${d.qa_status || "–"})${decision}`);
  $("note").value = "";
  const before = $("img-before"), after = $("img-after");
  before.onload = () => { state.zoom.natural = [before.naturalWidth, before.naturalHeight]; fit(); drawFaces(d); };
  after.onload = () => drawFaces(d);
  before.src = d.images.before || ""; after.src = d.images.after || "";
  $("img-matte").src = d.images.matte || ""; $("img-damage").src = d.images.damage || "";
  $("showdamage").disabled = !d.images.damage; $("showmatte").disabled = !d.images.matte;
  overlays();
  const reasons = $("reasons"); reasons.replaceChildren();
  for (const r of d.reasons.length ? d.reasons : ["all QA checks passed"]) reasons.append(el("li", { text: r }));
  const prov = $("provenance"); prov.replaceChildren();
  const p = d.provenance;
  const rows = [["source", p.source], ["size", `${p.size[0]}×${p.size[1]}, ${p.bit_depth}-bit`], ["sha256", p.sha256],
    ["preset", `${p.preset} — ${(p.preset_reasons || []).join("; ")}`], ["damage", p.damage || "none"],
    ["faces", p.face_detector], ["restore", `${p.restore_backend} ${p.restore_model}`],
    ["controls", JSON.stringify(p.controls)], ["matting", p.matting], ["batch", p.batch], ["notes", p.notes],
    ["published", p.output]];
  if (d.decision && Object.keys(d.decision.overrides || {}).length) rows.push(["overrides", JSON.stringify(d.decision.overrides)]);
  for (const [k, v] of rows) prov.append(el("dt", { text: k }), el("dd", { text: v || "–" }));
  drawFaces(d);
  document.body.dataset.shown = d.photo_id;
}

function drawFaces(d) {
  const box = $("faces"); box.replaceChildren();
  if (!d.faces.length) { box.append(el("p", { text: "no faces" })); return; }
  for (const f of d.faces) {
    const row = el("div", { class: "face" });
    for (const img of [$("img-before"), $("img-after")]) {
      const canvas = el("canvas", { width: "96", height: "96", "aria-label": `face ${f.index}` });
      if (img.complete && img.naturalWidth && f.box) {
        const [x0, y0, x1, y1] = f.box, pad = 0.2 * Math.max(x1 - x0, y1 - y0);
        const side = Math.max(x1 - x0, y1 - y0) + 2 * pad;
        canvas.getContext("2d").drawImage(img, (x0 + x1) / 2 - side / 2, (y0 + y1) / 2 - side / 2, side, side, 0, 0, 96, 96);
      }
      row.append(canvas);
    }
    const num = (v, n = 2) => (v === null || v === undefined ? "–" : Number(v).toFixed(n));
    row.append(el("div", { text: `face ${f.index}: detection ${num(f.score)}, identity distance ${num(f.identity_distance)}, ` +
                                 `strength ${num(f.strength, 0)}` }));
    box.append(row);
  }
}

function overlays() {
  const opacity = $("opacity").value / 100;
  for (const [id, box] of [["img-matte", "showmatte"], ["img-damage", "showdamage"]]) {
    $(id).hidden = !$(box).checked || $(box).disabled; $(id).style.opacity = opacity;
  }
}

function apply() {
  const z = state.zoom, t = `translate(${z.x}px, ${z.y}px) scale(${z.scale})`;
  for (const id of ["img-before", "img-after", "img-matte", "img-damage"]) $(id).style.transform = t;
  const [w, h] = z.natural;
  for (const id of ["img-matte", "img-damage"]) { $(id).style.width = `${w}px`; $(id).style.height = `${h}px`; }
  $("zoomlevel").textContent = `${Math.round(z.scale * 100)} %`;
  document.body.dataset.zoom = z.scale.toFixed(4);
}

function fit() {
  const stage = $("pane-before").querySelector(".stage"), [w, h] = state.zoom.natural;
  const s = Math.min(1, stage.clientWidth / w, stage.clientHeight / h);
  Object.assign(state.zoom, { fit: s, scale: s, x: (stage.clientWidth - w * s) / 2, y: (stage.clientHeight - h * s) / 2 });
  apply();
}

function zoom(factor, cx, cy) {  // synchronised: one transform for both panes, from fit up to 100 %
  const z = state.zoom, stage = $("pane-before").querySelector(".stage");
  if (cx === undefined) { cx = stage.clientWidth / 2; cy = stage.clientHeight / 2; }
  const scale = Math.min(1, Math.max(z.fit, z.scale * factor));
  z.x = cx - (cx - z.x) * (scale / z.scale); z.y = cy - (cy - z.y) * (scale / z.scale); z.scale = scale;
  apply();
}

for (const stage of document.querySelectorAll(".stage")) {
  let drag = null;
  stage.addEventListener("pointerdown", (e) => { drag = [e.clientX, e.clientY]; stage.setPointerCapture(e.pointerId); });
  stage.addEventListener("pointermove", (e) => {
    if (!drag) return;
    state.zoom.x += e.clientX - drag[0]; state.zoom.y += e.clientY - drag[1]; drag = [e.clientX, e.clientY]; apply();
  });
  stage.addEventListener("pointerup", () => { drag = null; });
  stage.addEventListener("wheel", (e) => {
    e.preventDefault(); const r = stage.getBoundingClientRect();
    zoom(e.deltaY < 0 ? 1.25 : 0.8, e.clientX - r.left, e.clientY - r.top);
  }, { passive: false });
}

// ---- decisions ----------------------------------------------------------------------------------
async function decide(decision, overrides) {
  const item = state.items[state.index];
  if (!item) return;
  try {
    const entry = await api("/api/decision", { photo_id: item.photo_id, decision, note: $("note").value, overrides });
    item.decision = entry.decision;
    const li = $("list").children[state.index], badge = el("span", { class: `badge ${entry.decision}`, text: entry.decision });
    const old = li.querySelector(".badge.accept, .badge.reject, .badge.retune"); if (old) old.replaceWith(badge); else li.querySelector(".badge").after(" ", badge);
    document.body.dataset.lastDecision = `${item.photo_id} ${entry.decision}`;
    say(`${entry.decision} recorded for ${item.source} (by ${entry.reviewer}); the next pipeline run applies it`);
    if (decision !== "retune") await step(1);
  } catch (err) { say(`could not record: ${err.message}`, true); }
}

function openRetune() {
  const d = state.detail; if (!d) return;
  const box = $("controls"); box.replaceChildren();
  const current = (d.decision && d.decision.overrides) || {};
  for (const c of state.config.controls) {
    let input;
    if (c.type === "enum" || c.type === "boolean") {
      input = el("select", { name: c.name, id: `ctl-${c.name}` }, el("option", { value: "", text: `(configured: ${c.configured})` }));
      for (const v of c.type === "boolean" ? ["true", "false"] : c.choices) input.append(el("option", { value: v, text: v }));
    } else {
      input = el("input", { type: "number", name: c.name, id: `ctl-${c.name}`, step: "any",
                            placeholder: `configured: ${c.configured}` });
      if (c.minimum !== null) input.min = c.minimum; if (c.maximum !== null) input.max = c.maximum;
    }
    if (current[c.name] !== undefined) input.value = String(current[c.name]);
    box.append(el("label", { for: `ctl-${c.name}`, text: `${c.name}${c.minimum !== null && c.type !== "boolean" ? ` (${c.minimum}–${c.maximum})` : ""}` }), input);
  }
  $("retune-image").hidden = true; $("keep").disabled = true; $("retune-state").textContent = ""; state.retuned = null;
  $("retune-dialog").showModal();
}

function formOverrides() {
  const out = {};
  for (const input of $("controls").querySelectorAll("input, select")) if (input.value !== "") out[input.name] = input.value;
  return out;
}

async function recompute() {
  const overrides = formOverrides(), status = $("retune-state");
  status.textContent = "recomputing this photo…"; status.className = ""; $("recompute").disabled = true;
  try {
    const result = await api("/api/retune", { photo_id: state.detail.photo_id, overrides });
    state.retuned = result.overrides;
    $("retune-image").src = `${result.image}?t=${Date.now()}`; $("retune-image").hidden = false;
    status.textContent = `recomputed in ${result.seconds} s: QA says ${result.status}` +
      (result.reasons.length ? ` (${result.reasons.join("; ")})` : "") + ". Keep records these settings.";
    $("keep").disabled = false;
    document.body.dataset.retuned = result.photo_id;
  } catch (err) { status.textContent = `retune failed: ${err.message}`; status.className = "error"; }
  $("recompute").disabled = false;
}

$("recompute").addEventListener("click", recompute);
$("keep").addEventListener("click", async () => { $("retune-dialog").close(); await decide("retune", state.retuned); });
$("cancel").addEventListener("click", () => $("retune-dialog").close());
$("accept").addEventListener("click", () => decide("accept"));
$("reject").addEventListener("click", () => decide("reject"));
$("retune").addEventListener("click", openRetune);
$("zoomin").addEventListener("click", () => zoom(1.25));
$("zoomout").addEventListener("click", () => zoom(0.8));
$("zoomfit").addEventListener("click", fit);
for (const id of ["showmatte", "showdamage", "opacity"]) $(id).addEventListener("input", overlays);
for (const id of ["status", "reason", "sort", "order"]) $(id).addEventListener("change", () => { state.offset = 0; loadList(); });
$("q").addEventListener("input", () => { state.offset = 0; clearTimeout(state.typing); state.typing = setTimeout(loadList, 250); });
$("filters").addEventListener("submit", (e) => e.preventDefault());
$("prevpage").addEventListener("click", () => { if (state.offset > 0) { state.offset -= PAGE; loadList(); } });
$("nextpage").addEventListener("click", () => { if (state.offset + PAGE < state.total) { state.offset += PAGE; loadList(); } });

document.addEventListener("keydown", (e) => {
  if (e.ctrlKey || e.metaKey || e.altKey || $("retune-dialog").open) return;
  if (e.target.closest("input, textarea, select")) { if (e.key === "Escape") e.target.blur(); return; }
  const keys = { a: () => decide("accept"), r: () => decide("reject"), t: openRetune, j: () => step(1), k: () => step(-1),
    ArrowDown: () => step(1), ArrowRight: () => step(1), ArrowUp: () => step(-1), ArrowLeft: () => step(-1),
    "+": () => zoom(1.25), "=": () => zoom(1.25), "-": () => zoom(0.8), "0": fit,
    m: () => { $("showmatte").checked = !$("showmatte").checked; overlays(); },
    d: () => { $("showdamage").checked = !$("showdamage").checked; overlays(); } };
  if (keys[e.key]) { e.preventDefault(); keys[e.key](); }
});

(async () => {
  state.config = await api("/api/config");
  $("who").textContent = `reviewer: ${state.config.reviewer}`;
  if (state.config.all) $("status").value = "all";
  await loadList();
  document.body.dataset.ready = "1";
})();
