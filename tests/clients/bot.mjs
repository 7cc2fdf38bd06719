// A minimal non-Python bot: plain fetch, no keys, no signing. Usage: node bot.mjs http://127.0.0.1:PORT
const base = process.argv[2];

async function call(method, params = {}) {
  const res = await fetch(`${base}/v1.1/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(params).toString(),
  });
  const body = await res.json();
  if (res.status !== 200 || body.result === false) {
    throw new Error(`${method}: HTTP ${res.status} ${JSON.stringify(body)}`);
  }
  return body;
}

const info = await call("user_info");
const created = await call("order_create", { pair: "ETH_USDT", quantity: "0.5", price: "1000", type: "buy" });
const open = await call("user_open_orders", { pair: "ETH_USDT" });
const listed = (open.ETH_USDT || []).some((o) => String(o.order_id) === String(created.order_id));
await call("order_cancel", { order_id: String(created.order_id) });
const ticker = await (await fetch(`${base}/v1.1/ticker`)).json();
console.log(JSON.stringify({
  usdt: info.balances.USDT, order_id: created.order_id, listed, has_ticker: "ETH_USDT" in ticker,
}));
