// Replay benchmark: N clients connect with connection state recovery, all drop their transports,
// M events are published while they are away, then all N reconnect at once with their pid. Prints
// how long each took from its CONNECT to its M-th replayed event, and the server's CPU time.
//
//   node replay.js URL N M SERVER_PID
const WebSocket = require(process.env.WS_MODULE || "/usr/share/nodejs/ws");
const fs = require("fs");
const [url, n, m, serverPid] = [process.argv[2], +process.argv[3], +process.argv[4], process.argv[5]];
const wsURL = url.replace("http", "ws") + "/socket.io/?EIO=4&transport=websocket";

const cpuSeconds = () => {
    const fields = fs.readFileSync(`/proc/${serverPid}/stat`, "utf8").split(") ")[1].split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100; // utime + stime, in clock ticks of 10 ms
};
const get = async (path) => (await fetch(url + path)).json();
const waitFor = async (what, condition, seconds = 60) => {
    const end = Date.now() + seconds * 1000;
    while (!(await condition())) {
        if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
        await new Promise((r) => setTimeout(r, 50));
    }
};

// Opens a session and sends CONNECT with `auth`; resolves with the socket and the CONNECT reply,
// then calls onEvent for each event.
const open = (auth, onEvent) => new Promise((resolve, reject) => {
    const ws = new WebSocket(wsURL);
    ws.on("error", reject);
    ws.on("message", (data) => {
        const text = data.toString();
        if (text[0] === "0") ws.send("40" + (auth ? JSON.stringify(auth) : ""));
        else if (text === "2") ws.send("3");
        else if (text.startsWith("40")) resolve({ ws, reply: JSON.parse(text.slice(2)) });
        else if (text.startsWith("42")) onEvent(text);
    });
});

const percentile = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];

(async () => {
    const sessions = [];
    for (let start = 0; start < n; start += 100) {
        const batch = [];
        for (let i = start; i < Math.min(n, start + 100); i++) batch.push(open(null, () => {}));
        sessions.push(...(await Promise.all(batch)));
    }
    for (const { ws } of sessions) ws.terminate();
    await waitFor("the clients to be gone", async () => (await get("/api/stats")).clients === 0);
    const before = (await get("/api/stats")).messages;
    for (let first = 0; first < m; first += 100) {
        const body = [];
        for (let k = first; k < Math.min(m, first + 100); k++) body.push({ event: "item_added", data: { n: k } });
        const answer = await fetch(url + "/api/emit/batch", { method: "POST", body: JSON.stringify(body) });
        if (answer.status !== 202) throw new Error(`publish answered ${answer.status}`);
    }
    await waitFor("the events to be logged", async () => (await get("/api/stats")).messages >= before + m);

    const cpuBefore = cpuSeconds();
    const started = performance.now();
    const durations = [];
    let recovered = 0;
    let wrong = 0;
    await Promise.all(sessions.map(({ reply }) => new Promise((resolve, reject) => {
        const sent = performance.now();
        let count = 0;
        let expected = 0;
        open({ pid: reply.pid }, (text) => {
            if (!text.includes(`{"n":${expected}}`)) wrong++;
            expected++;
            if (++count === m) {
                durations.push(performance.now() - sent);
                resolve();
            }
        }).then(({ ws, reply: again }) => {
            if (again.sid === reply.sid) recovered++;
            if (m === 0) resolve();
        }, reject);
    })));
    const total = performance.now() - started;
    const cpu = cpuSeconds() - cpuBefore;
    durations.sort((a, b) => a - b);
    console.log(JSON.stringify({
        clients: n, missed: m, recovered, out_of_order: wrong,
        all_replayed_ms: Math.round(total), p50_ms: Math.round(percentile(durations, 0.5)),
        p99_ms: Math.round(percentile(durations, 0.99)), max_ms: Math.round(durations[durations.length - 1]),
        server_cpu_s: +cpu.toFixed(2), events_replayed_per_s: Math.round((n * m) / (total / 1000)),
    }));
    process.exit(0);
})().catch((error) => { console.error(error); process.exit(1); });
