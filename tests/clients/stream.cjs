// A Node.js bot on the daemon's private stream with npm's `ws` and placeholder credentials:
// node stream.cjs ws://127.0.0.1:PORT/v1/private  -> prints a JSON summary, exits non-zero on failure.
const WebSocket = require("ws");

const url = process.argv[2];
const summary = {};
const ws = new WebSocket(url);
const fail = (why) => { console.error(why); process.exit(1); };
setTimeout(() => fail("timed out: " + JSON.stringify(summary)), 20000);

ws.on("message", (data) => {
  const frame = JSON.parse(data.toString());
  if (frame.event === "info" && summary.greeting === undefined) {
    summary.greeting = frame.event;
    ws.send(JSON.stringify({ id: 5, method: "login", api_key: "placeholder", sign: "placeholder", nonce: Date.now() }));
  } else if (frame.event === "logged_in") {
    summary.logged_in_id = frame.id;
    ws.send(JSON.stringify({ id: 6, method: "subscribe", topics: ["spot/wallet"] }));
  } else if (frame.event === "snapshot" && frame.topic === "spot/wallet") {
    summary.balances = Object.keys(frame.data.balances);
    ws.close(1000);
  } else if (frame.event === "error") {
    fail("error frame: " + JSON.stringify(frame));
  }
});
ws.on("close", (code) => {
  if (code !== 1000 && code !== 1005) fail("closed with " + code);
  console.log(JSON.stringify(summary));
  process.exit(0);
});
ws.on("error", (err) => fail(String(err)));
