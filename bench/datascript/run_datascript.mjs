// Runs DataScript (npm `datascript`, in node) on bench/datascript's data set and
// prints {"bench": median_ms, ...} as JSON. Usage: node run_datascript.mjs data.json queries.json
import { createRequire } from "module";
import fs from "fs";
const require = createRequire(import.meta.url);
const d = require("datascript");

const [dataPath, queriesPath] = process.argv.slice(2);
const data = JSON.parse(fs.readFileSync(dataPath, "utf8"));
const queries = JSON.parse(fs.readFileSync(queriesPath, "utf8"));
const WARMUP_MS = Number(process.env.WARMUP_MS || 1000);
const SAMPLE_MS = Number(process.env.SAMPLE_MS || 500);
const SAMPLES = Number(process.env.SAMPLES || 5);

// Mean ms per call over `ms` milliseconds (at least one call).
function dotime(ms, fn) {
  const start = performance.now();
  let n = 0, now;
  do { fn(); n++; now = performance.now(); } while (now - start < ms);
  return (now - start) / n;
}
function bench(fn) {
  dotime(WARMUP_MS, fn);
  const times = [];
  for (let i = 0; i < SAMPLES; i++) times.push(dotime(SAMPLE_MS, fn));
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

const schema = {
  id: { ":db/unique": ":db.unique/identity" },
  follows: { ":db/valueType": ":db.type/ref", ":db/cardinality": ":db.cardinality/many" },
  alias: { ":db/cardinality": ":db.cardinality/many" },
};
const peopleTx = data.people.map((p) => ({
  ":db/id": -p.id, name: p.name, "last-name": p["last-name"], "full-name": p["full-name"],
  alias: p.alias, sex: p.sex, age: p.age, salary: p.salary,
}));
// DataScript's JS API names attributes with strings, so `:name` in a pattern
// becomes "name" (query keywords such as :find stay).
const QUERY_WORDS = new Set(["find", "where", "in", "keys", "with"]);
const jsQuery = (q) => q.replace(/:([a-z][a-z-]*)/g, (m, w) => (QUERY_WORDS.has(w) ? m : JSON.stringify(w)));
for (const spec of Object.values(queries)) {
  spec.query = jsQuery(spec.query);
  if (spec.args) spec.args = spec.args.map((a) => (a.startsWith("[[") ? jsQuery(a) : a));
}
const results = {};
const peopleDb = d.db_with(d.empty_db(schema), peopleTx);
// The write benchmarks run once each (they take seconds); the queries are
// warmed up and sampled.
const once = (fn) => { const t0 = performance.now(); fn(); return performance.now() - t0; };
results["add-all"] = once(() => d.db_with(d.empty_db(schema), peopleTx));
results["add-5"] = once(() => peopleTx.reduce((db, p) => d.db_with(db, [p]), d.empty_db(schema)));
results["add-1"] = once(() => data.people.reduce((db, p) => {
  for (const a of ["name", "last-name", "sex", "age", "salary"]) db = d.db_with(db, [[":db/add", p.id, a, p[a]]]);
  return db;
}, d.empty_db(schema)));
const eids = d.datoms(peopleDb, ":aevt", "name").map((datom) => datom.e);
results["retract-5"] = once(() => eids.reduce((db, e) => d.db_with(db, [[":db.fn/retractEntity", e]]), peopleDb));

for (const [name, spec] of Object.entries(queries)) {
  if (name === "rules") continue;
  const args = (spec.args || []).map((a) => JSON.parse(a));
  results[name] = bench(() => d.q(spec.query, peopleDb, ...args));
  results[name + ":rows"] = d.q(spec.query, peopleDb, ...args).length;
}
const rules = queries.rules;
for (const [name, edges] of Object.entries(data.graphs)) {
  const nodes = new Set();
  edges.forEach(([a, b]) => { nodes.add(a); nodes.add(b); });
  const tx = [...nodes].map((n) => ({ ":db/id": n, id: n }));
  edges.forEach(([a, b]) => tx.push([":db/add", a, "follows", b]));
  const db = d.db_with(d.empty_db(schema), tx);
  results[name] = bench(() => d.q(rules.query, db, rules.args[0]));
  results[name + ":rows"] = d.q(rules.query, db, rules.args[0]).length;
}
console.log(JSON.stringify(results, null, 1));
