"""The live status view: one self-contained page that polls the API, nothing to build or serve."""

STATUS_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>streamer</title>
<style>
  body { font: 14px system-ui, sans-serif; margin: 2rem; color: #222; }
  table { border-collapse: collapse; min-width: 60rem; }
  th, td { padding: .3rem .8rem; border-bottom: 1px solid #ddd; text-align: right; }
  th:first-child, td:first-child, td.state { text-align: left; }
  .streaming { color: #17803d; } .connecting, .backoff { color: #b7791f; }
  .stopped { color: #888; } #health { font-weight: bold; }
  form { margin: 1rem 0; } button { margin-left: .3rem; }
</style>
</head>
<body>
<h1>streamer <span id="health"></span></h1>
<form id="start"><input id="symbol" placeholder="ETHUSDT" required>
<button>start streaming</button> <span id="error"></span></form>
<table>
<thead><tr><th>symbol</th><th>status</th><th>state</th><th>since</th><th>restarts</th>
<th>trades</th><th>trades/s</th><th>last trade id</th><th>gaps filled</th><th>gaps lost</th>
<th></th></tr></thead>
<tbody id="rows"></tbody>
</table>
<script>
const rows = document.getElementById("rows");
const error = document.getElementById("error");
function cell(text, cls) {
  const td = document.createElement("td");
  td.textContent = text ?? "";
  if (cls) td.className = cls;
  return td;
}
async function call(symbol, action) {
  const response = await fetch(`/api/settings/${symbol}/${action}`, {method: "POST"});
  error.textContent = response.ok ? "" : (await response.json()).detail;
  refresh();
}
async function refresh() {
  const health = await fetch("/api/health").then(r => r.json()).catch(() => null);
  document.getElementById("health").textContent =
    health === null ? "(unreachable)" : health.ready ? "(ready)" : "(not ready)";
  const states = await fetch("/api/settings?active=true").then(r => r.json()).catch(() => []);
  rows.replaceChildren(...states.map(s => {
    const tr = document.createElement("tr");
    const since = s.since ? new Date(s.since).toLocaleTimeString() : "";
    tr.append(cell(s.symbol), cell(s.status), cell(s.state, "state " + s.state), cell(since),
      cell(s.restarts), cell(s.trades), cell(s.rate.toFixed(1)), cell(s.last_trade_id),
      cell(s.gaps_filled), cell(s.gaps_lost));
    const td = document.createElement("td");
    const stop = document.createElement("button");
    stop.textContent = "stop";
    stop.onclick = () => call(s.symbol, "stop");
    td.append(stop);
    tr.append(td);
    return tr;
  }));
}
document.getElementById("start").onsubmit = event => {
  event.preventDefault();
  call(document.getElementById("symbol").value.trim(), "start");
};
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""
