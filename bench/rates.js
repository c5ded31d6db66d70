// k6 script of bench/rates.py: a fixed offered rate (open model), the seeds' claim as stated.
//
// The constant-arrival-rate executor starts BENCH_RATE iterations per second whatever the
// system answers: a slow answer does not slow the arrivals down (as it does in wrk's closed
// loop), it needs another virtual user, and when none is left (BENCH_MAX_VUS) the iteration is
// dropped and counted (dropped_iterations). Each iteration sends one request:
//
//   BENCH_MODE=reads   GET /api/v1/products/{id} (public) or, every second one,
//                      GET /api/v1/orders/{id} with the owner's token; ids drawn uniformly
//   BENCH_MODE=orders  POST /api/v1/orders of one unit of a random product, with the token
//                      and an Idempotency-Key new for every iteration
//
// The token comes from BENCH_ACCESS_TOKEN (environment, not the command line). Answers of
// another status than expected count as failed requests. The summary (percentiles, counts)
// is written as JSON to BENCH_SUMMARY for the runner.

import http from "k6/http";
import exec from "k6/execution";
import { Counter, Trend } from "k6/metrics";

const env = __ENV;
const mode = env.BENCH_MODE;
const base = env.BENCH_BASE_URL;
const [productLow, productHigh] = [Number(env.BENCH_PRODUCT_LOW), Number(env.BENCH_PRODUCT_HIGH)];
const [orderLow, orderHigh] = [Number(env.BENCH_ORDER_LOW), Number(env.BENCH_ORDER_HIGH)];
const authorized = { headers: { Authorization: `Bearer ${env.BENCH_ACCESS_TOKEN}` } };

const productReads = new Trend("product_read_duration", true);
const orderReads = new Trend("order_read_duration", true);
const unexpected = new Counter("unexpected_status");

export const options = {
  discardResponseBodies: true,
  summaryTrendStats: ["avg", "p(50)", "p(95)", "p(99)", "max"],
  scenarios: {
    offered: {
      executor: "constant-arrival-rate",
      rate: Number(env.BENCH_RATE),
      timeUnit: "1s",
      duration: `${env.BENCH_DURATION}s`,
      preAllocatedVUs: Number(env.BENCH_VUS),
      maxVUs: Number(env.BENCH_MAX_VUS),
      gracefulStop: "10s",
    },
  },
};

function between(low, high) {
  return low + Math.floor(Math.random() * (high - low + 1));
}

function expect(response, status) {
  if (response.status !== status) {
    unexpected.add(1, { status: String(response.status) });
  }
}

function read() {
  if (exec.scenario.iterationInTest % 2 === 0) {
    const response = http.get(`${base}/api/v1/products/${between(productLow, productHigh)}`, {
      responseCallback: http.expectedStatuses(200),
    });
    productReads.add(response.timings.duration);
    expect(response, 200);
    return;
  }
  const params = { ...authorized, responseCallback: http.expectedStatuses(200) };
  const response = http.get(`${base}/api/v1/orders/${between(orderLow, orderHigh)}`, params);
  orderReads.add(response.timings.duration);
  expect(response, 200);
}

function place() {
  const body = JSON.stringify({
    lines: [{ product_id: between(productLow, productHigh), quantity: 1 }],
  });
  const headers = {
    ...authorized.headers,
    "Content-Type": "application/json",
    "Idempotency-Key": `${env.BENCH_KEY_PREFIX}-${exec.scenario.iterationInTest}`,
  };
  const response = http.post(`${base}/api/v1/orders`, body, {
    headers,
    responseCallback: http.expectedStatuses(201),
  });
  expect(response, 201);
}

export default function () {
  if (mode === "orders") {
    place();
  } else {
    read();
  }
}

function metric(data, name) {
  const found = data.metrics[name];
  return found ? found.values : {};
}

export function handleSummary(data) {
  const summary = {
    duration: metric(data, "http_req_duration"),
    products: metric(data, "product_read_duration"),
    orders: metric(data, "order_read_duration"),
    requests: metric(data, "http_reqs").count || 0,
    failed: metric(data, "http_req_failed").passes || 0,
    unexpected: metric(data, "unexpected_status").count || 0,
    dropped: metric(data, "dropped_iterations").count || 0,
    iterations: metric(data, "iterations").count || 0,
    max_vus: metric(data, "vus_max").max || 0,
    duration_s: data.state.testRunDurationMs / 1000,
  };
  return { [env.BENCH_SUMMARY]: JSON.stringify(summary) };
}
