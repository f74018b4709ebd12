// The dashboard page's script: a file of the app (the content security policy runs no inline script).
"use strict";
const TIERS = ["premium", "potential", "improving", "substandard", "unassessed"];
const LABEL = {benefit_online_days: "Benefit online days", effective_members: "Effective members",
  member_gmv_share: "Member GMV share", quality_member_ratio: "Quality member ratio", benefit_penetration: "Benefit penetration"};
const RULEBOOK = {benefit_online_days: "权益在线天数", effective_members: "有效会员", member_gmv_share: "会员成交渗透",
  quality_member_ratio: "优质关系占比", benefit_penetration: "会员权益渗透"};  // shown as tooltips (fonts vary)
const $ = (id) => document.getElementById(id);
// Everything from the data goes into markup through esc: a shop's industry or a reason is text, never HTML.
const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
// Every instant in the rules' time zone (the server fills it in from the rule parameters) with its
// offset: the boundaries, deadlines and cycles of this domain are local days there.
const TZ = document.querySelector('meta[name="tierstream-tz"]').content;
const LOCAL = new Intl.DateTimeFormat("en-CA", {timeZone: TZ, year: "numeric", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hourCycle: "h23", timeZoneName: "longOffset"});
function localParts(ms) {
  const p = Object.fromEntries(LOCAL.formatToParts(new Date(ms)).map(x => [x.type, x.value]));
  return {date: `${p.year}-${p.month}-${p.day}`, time: `${p.hour}:${p.minute}`,
          offset: p.timeZoneName.replace("GMT", "") || "+00:00"};
}
const fmtTime = (ms) => { if (ms == null) return "–"; const p = localParts(ms); return `${p.date} ${p.time} ${p.offset}`; };
const fmtDate = (ms) => ms == null ? "–" : localParts(ms).date;
// a cycle by its local days: [start, end) in ms, or a cycle id (its first local day: the 1st or the 16th)
function cycleName(start, end) { return `${fmtDate(start)} – ${fmtDate(end - 1)}`; }
function cycleNameOfId(id) {
  const [y, m, d] = id.split("-").map(Number);
  const last = d === 1 ? 15 : new Date(Date.UTC(y, m, 0)).getUTCDate();  // day 0 of the next month
  return `${id} – ${id.slice(0, 8)}${String(last).padStart(2, "0")}`;
}
let shopSource = null;

function badge(el, tier) { el.textContent = tier || "unassessed"; el.className = "badge t-" + (tier || "unassessed"); }

const COMPACT = new Intl.NumberFormat("en", {notation: "compact"});  // 333K, 2M, 1.2K
const num = (n) => `<span class="n-full">${n.toLocaleString("en")}</span><span class="n-short" title="${n}">${COMPACT.format(n)}</span>`;

function renderPlatform(p) {
  const head = "<tr><th>industry</th>" + TIERS.map(t => `<th><span class="badge t-${t}">${t}</span></th>`).join("") + "<th>all</th></tr>";
  $("platform-table").tHead.innerHTML = head;
  const rows = Object.entries(p.tiers).map(([ind, c]) =>
    `<tr data-industry="${esc(ind)}"><td>${esc(ind)}</td>` + TIERS.map(t => `<td>${num(c[t] || 0)}</td>`).join("") +
    `<td>${num(Object.values(c).reduce((a, b) => a + b, 0))}</td></tr>`);
  rows.push(`<tr><td><b>all</b></td>` + TIERS.map(t => `<td><b>${num(p.totals[t] || 0)}</b></td>`).join("") + `<td><b>${num(p.shops)}</b></td></tr>`);
  $("platform-table").tBodies[0].innerHTML = rows.join("");
  $("platform-meta").textContent = `namespace ${p.namespace} · watermark ${fmtTime(p.watermark)} · last closed boundary ${fmtTime(p.last_closed)}`;
  $("meta").textContent = `${p.shops.toLocaleString("en")} shops · watermark ${fmtTime(p.watermark)}`;
}

function pct(x) { return (x * 100).toFixed(1) + "%"; }

function renderIndicator(name, d) {
  const ratio = !["benefit_online_days", "effective_members"].includes(name);
  const value = ratio ? pct(d.value) : d.value;
  const std = ratio ? pct(d.standard) : (name === "benefit_online_days" ? `${d.standard} days` : d.standard);
  const detail = name === "benefit_online_days" ? `${d.numerator} of ${d.denominator} days`
    : name === "effective_members" ? `${d.numerator} of ${d.denominator} members`
    : `${d.numerator} / ${d.denominator}`;
  const scale = ratio ? Math.max(d.standard * 2, d.value, 1e-9) : Math.max(d.standard * 2, d.value, 1);
  const fill = Math.min(100, 100 * d.value / scale), mark = Math.min(100, 100 * d.standard / scale);
  return `<div class="ind ${d.met ? "met" : ""}" data-indicator="${name}" data-met="${d.met}">
    <div class="row"><span title="${RULEBOOK[name]}">${LABEL[name]}</span><span><b class="value">${value}</b> <span class="mute">(${detail}) · standard ${std} ${d.met ? "✓" : "✗"}</span></span></div>
    <div class="bar"><div class="fill" data-width="${fill}"></div><div class="std" data-left="${mark}"></div></div></div>`;
}

function renderHistory(hist) {
  const svg = $("history"), items = hist.slice(0, 12).reverse(), w = 480, h = 90;
  if (!items.length) { svg.innerHTML = `<text x="4" y="20">no assessment yet</text>`; return; }
  const y = (t) => 10 + TIERS.indexOf(t) * 15, step = items.length > 1 ? (w - 80) / (items.length - 1) : 0;
  const pts = items.map((e, i) => [70 + i * step, y(e.tier)]);
  svg.innerHTML = TIERS.slice(0, 4).map(t => `<text x="2" y="${y(t) + 3}">${t}</text>`).join("") +
    `<polyline fill="none" stroke="#9aa3b5" stroke-width="1.5" points="${pts.map(p => p.join(",")).join(" ")}"/>` +
    pts.map((p, i) => `<circle cx="${p[0]}" cy="${p[1]}" r="4" class="c-${esc(items[i].tier)}"><title>${esc(cycleNameOfId(items[i].cycle))}: ${esc(items[i].tier)}</title></circle>`).join("") +
    `<text x="70" y="${h - 2}">${esc(items[0].cycle)}</text><text x="${w - 60}" y="${h - 2}">${esc(items[items.length - 1].cycle)}</text>`;
}

function renderShop(v) {
  $("empty").hidden = true; $("shop-body").hidden = false; $("error").textContent = "";
  $("shop-title").textContent = `${v.shop_id} · ${v.industry}`;
  $("shop-body").dataset.shop = v.shop_id; $("shop-body").dataset.asOf = v.as_of;
  badge($("tier"), v.tier); badge($("projected-tier"), v.projected_tier);
  $("status").textContent = v.status; $("status").className = "status-" + v.status;
  $("cycle").textContent = cycleName(v.cycle.start, v.cycle.end);
  $("cycle").title = `as of ${fmtTime(v.as_of)}; closes ${fmtTime(v.cycle.end)}`;
  $("cycle").dataset.id = v.cycle.id;
  const d = v.indicators.benefit_online_days;
  $("days-online").textContent = `${d.numerator} / ${v.days_in_cycle}`;
  $("indicators").innerHTML = Object.entries(v.indicators).map(([n, d]) => renderIndicator(n, d)).join("");
  // sizes through the style object: style attributes in markup are inline style, which the policy refuses
  for (const el of $("indicators").querySelectorAll("[data-width]")) el.style.width = `${el.dataset.width}%`;
  for (const el of $("indicators").querySelectorAll("[data-left]")) el.style.left = `${el.dataset.left}%`;
  $("restrictions").innerHTML = v.restrictions.length ? v.restrictions.map(r =>
    `<li data-reason="${esc(r.reason)}"><b>${esc(r.reason)}</b> since ${fmtTime(r.since)}${r.until ? " until " + fmtTime(r.until) : ""}: ` +
    Object.entries(r.scope).map(([ch, m]) => `${esc(ch)} → ${esc(m)}`).join(", ") + `</li>`).join("") : "<li class=mute>none</li>";
  const reg = v.registration_join;
  $("registration").textContent = `registration join: ${reg.state}` +
    (reg.state === "buffer" ? ` until ${fmtTime(v.cycle.end)}` : "") +  // a buffer lasts to the next boundary
    (reg.grace_deadline ? `, change join setting before ${fmtTime(reg.grace_deadline)}` : "") +
    (reg.blocked ? " · recruitment blocked" : "") + (v.recruitment_quality.status ? ` · recruitment quality: ${v.recruitment_quality.status}` : "");
  renderHistory(v.history);
  $("times-note").textContent = `as of ${fmtTime(v.as_of)} · times in ${TZ}`;
}

// The access token (TIERSTREAM_DASHBOARD_TOKEN), when the server asks for one: typed once, kept in
// this tab's session storage only, sent as `Authorization: Bearer` with every request. The event
// streams are read with fetch, not EventSource, because EventSource cannot send that header (and a
// token in the URL would end up in logs and history).
const TOKEN_KEY = "tierstream-dashboard-token";
class Unauthorized extends Error {}
const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

async function api(path, init = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = {...(init.headers || {}), ...(token ? {Authorization: `Bearer ${token}`} : {})};
  const res = await fetch(path, {...init, headers, cache: "no-store", credentials: "omit"});
  if (res.status === 401) {
    askToken(token ? "That token was refused." : "");
    throw new Unauthorized();
  }
  return res;
}

// Follow a server-sent event stream: call onEvent(name, data) per event, reconnect after a pause.
function follow(path, onEvent) {
  const ctl = new AbortController();
  let stopped = false;
  (async () => {
    while (!stopped) {
      try {
        const res = await api(path, {signal: ctl.signal, headers: {Accept: "text/event-stream"}});
        if (!res.ok) throw new Error(`${res.status}`);
        const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
        let buf = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buf += value;
          for (let i; (i = buf.indexOf("\n\n")) >= 0; buf = buf.slice(i + 2)) {
            const lines = buf.slice(0, i).split("\n");
            const name = (lines.find((l) => l.startsWith("event: ")) || "event: message").slice(7);
            const data = lines.filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
            if (data) onEvent(name, JSON.parse(data));
          }
        }
      } catch (e) {
        if (stopped || e instanceof Unauthorized) return;
      }
      if (!stopped) { $("meta").textContent = "reconnecting…"; await sleep(2000); }
    }
  })();
  return {close() { stopped = true; ctl.abort(); }};
}

function askToken(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  stopAll();
  $("main").hidden = true; $("auth").hidden = false;
  $("auth-error").textContent = message; $("meta").textContent = "access token needed";
  $("auth-token").focus();
}

$("auth-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const token = $("auth-token").value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $("auth-token").value = "";
  $("auth").hidden = true; $("main").hidden = false;
  start();
});

async function pick(id) {
  id = id.trim();
  if (!id) return;
  if (shopSource) { shopSource.close(); shopSource = null; }
  let res;
  try { res = await api(`/api/shops/${encodeURIComponent(id)}`); } catch (e) { return; }
  if (!res.ok) { $("error").textContent = (await res.json()).error; return; }
  renderShop(await res.json());
  history.replaceState(null, "", `#${encodeURIComponent(id)}`);
  shopSource = follow(`/api/shops/${encodeURIComponent(id)}/events`, (name, v) => { if (name === "shop") renderShop(v); });
}

async function suggest() {
  let res;
  try { res = await api(`/api/shops?limit=50&prefix=${encodeURIComponent($("shop-input").value)}`); } catch (e) { return; }
  if (res.ok) $("shop-list").innerHTML = (await res.json()).shops.map(s => `<option value="${esc(s)}">`).join("");
}

let platformSource = null;
function stopAll() {
  if (platformSource) { platformSource.close(); platformSource = null; }
  if (shopSource) { shopSource.close(); shopSource = null; }
}

function start() {
  stopAll();
  platformSource = follow("/api/platform/events", (name, p) => { if (name === "platform") renderPlatform(p); });
  suggest();
  if (location.hash.length > 1) { $("shop-input").value = decodeURIComponent(location.hash.slice(1)); pick($("shop-input").value); }
}

$("shop-go").addEventListener("click", () => pick($("shop-input").value));
$("shop-input").addEventListener("keydown", (e) => { if (e.key === "Enter") pick($("shop-input").value); });
$("shop-input").addEventListener("input", suggest);
start();
