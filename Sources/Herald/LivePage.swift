/// The live page served at `/`: it polls `/api/stats` and updates its figures in place.
///
/// Its requests go to the page's own origin (built from `location.origin`, which never holds
/// credentials, so a page opened as `http://user:key@host/` can still fetch), and carry the HTTP
/// Basic credentials the browser stored when its user logged in to the page.
enum LivePage {
    static let html = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <title>herald</title>
        <style>
          body { font: 15px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d232b; background: #f6f7f9; }
          h1 { font-size: 1.3rem; margin: 0 0 1rem; }
          .figures { display: flex; gap: 1rem; flex-wrap: wrap; }
          .figure { background: #fff; border-radius: 8px; padding: .8rem 1.1rem; min-width: 9rem; box-shadow: 0 1px 2px #0001; }
          .figure b { display: block; font-size: 1.8rem; font-variant-numeric: tabular-nums; }
          table { border-collapse: collapse; background: #fff; margin-top: 1rem; min-width: 30rem; box-shadow: 0 1px 2px #0001; }
          td, th { padding: .3rem .7rem; text-align: left; border-bottom: 1px solid #eee; font-variant-numeric: tabular-nums; }
          code { font-size: .85rem; color: #555; }
          #status { color: #888; font-size: .85rem; }
        </style>
        </head>
        <body>
        <h1>herald <span id="status">connecting…</span></h1>
        <div class="figures">
          <div class="figure">clients<b id="clients">–</b></div>
          <div class="figure">messages / s<b id="rate">–</b></div>
          <div class="figure">messages<b id="messages">–</b></div>
          <div class="figure">deliveries<b id="deliveries">–</b></div>
          <div class="figure">reached nobody<b id="unheard">–</b></div>
          <div class="figure">received<b id="received">–</b></div>
          <div class="figure">queue lag (s)<b id="lag">–</b></div>
          <div class="figure">nodes<b id="nodes">1</b></div>
        </div>
        <table><thead><tr><th>room</th><th>clients</th></tr></thead><tbody id="rooms"></tbody></table>
        <table><thead><tr><th>time</th><th>event</th><th>to</th><th>data</th><th>clients</th></tr></thead><tbody id="feed"></tbody></table>
        <script>
        let previous = null;
        function cell(text) { const td = document.createElement("td"); td.textContent = text; return td; }
        function row(cells) { const tr = document.createElement("tr"); cells.forEach(c => tr.appendChild(cell(c))); return tr; }
        async function refresh() {
          try {
            const response = await fetch(new URL("/api/stats", location.origin), { cache: "no-store", credentials: "same-origin" });
            if (response.status === 401) {
              document.getElementById("status").textContent = "not authorized: reload and log in with the operations key";
              return;
            }
            const stats = await response.json();
            document.getElementById("clients").textContent = stats.clients;
            document.getElementById("messages").textContent = stats.messages;
            document.getElementById("deliveries").textContent = stats.deliveries;
            document.getElementById("unheard").textContent = stats.messagesWithoutRecipients;
            document.getElementById("received").textContent = stats.eventsReceived;
            document.getElementById("lag").textContent = stats.queueLagSeconds === undefined ? "–" : stats.queueLagSeconds.toFixed(3);
            if (stats.cluster) {
              const nodes = document.getElementById("nodes");
              nodes.textContent = 1 + stats.cluster.peers.length;
              nodes.title = "this node: " + stats.cluster.node + (stats.cluster.listening ? "" : " (not connected to PostgreSQL)")
                + "\\nother nodes: " + (stats.cluster.peers.join(", ") || "none");
            }
            if (previous) {
              const rate = (stats.messages - previous.messages) / (stats.time - previous.time);
              document.getElementById("rate").textContent = rate.toFixed(1);
            }
            previous = stats;
            const rooms = document.getElementById("rooms");
            rooms.replaceChildren(...Object.entries(stats.rooms).sort().map(([name, size]) => row([name, size])));
            const feed = document.getElementById("feed");
            feed.replaceChildren(...stats.recent.map(e => row([
              new Date(e.time * 1000).toLocaleTimeString(), e.event,
              (e.namespace === "/" ? "" : e.namespace + " ") + (e.rooms.length ? e.rooms.join(", ") : "everyone"), e.preview, e.recipients])));
            document.getElementById("status").textContent = "live";
          } catch (error) {
            document.getElementById("status").textContent = "disconnected";
          }
        }
        refresh();
        setInterval(refresh, 1000);
        </script>
        </body>
        </html>
        """
}
