// Validate Argo CD Application objects against @kubernetes-models/argo-cd (Argo CD's Application
// schema, generated from argoproj/argo-cd pkg/apis/application/v1alpha1), and reject unknown fields.
//
// stdin: {"objects": [<Application>, ...], "trace": false} (or base and mutations, below)
// stdout: [{"errors": ["<pointer>: <message>", ...], "nodes": {<pointer>: {"read": [...], "listed": bool}}}]
//
// The package's validators check types, required fields and formats but ignore fields they do not
// declare. The API server does not accept those either: it prunes them (structural schemas), except
// below x-kubernetes-preserve-unknown-fields. So every object is validated through a Proxy that
// records which keys the validator reads in each object: a key it never reads, in an object where it
// reads some, is unknown to the schema. An object where it reads none (Helm's valuesObject) is free
// form, and one whose keys it lists (labels, annotations) is a map.
import { Application } from "@kubernetes-models/argo-cd/argoproj.io/v1alpha1/Application";

function track(value, pointer, nodes) {
  if (value === null || typeof value !== "object") return value;
  const node = { read: new Set(), listed: false };
  nodes.set(pointer, node);
  const children = new Map();
  return new Proxy(value, {
    get(target, key, receiver) {
      if (typeof key !== "string") return Reflect.get(target, key, receiver);
      node.read.add(key);
      if (!Object.hasOwn(target, key)) return Reflect.get(target, key, receiver);
      if (!children.has(key)) children.set(key, track(target[key], `${pointer}/${escape(key)}`, nodes));
      return children.get(key);
    },
    has(target, key) {
      if (typeof key === "string") node.read.add(key);
      return Reflect.has(target, key);
    },
    ownKeys(target) {
      node.listed = true;
      return Reflect.ownKeys(target);
    },
  });
}

function escape(key) {
  return key.replaceAll("~", "~0").replaceAll("/", "~1");
}

function unknownFields(value, pointer, nodes, errors) {
  if (value === null || typeof value !== "object") return;
  const node = nodes.get(pointer);
  if (node === undefined) return; // not reached: an error above it was reported
  if (Array.isArray(value)) {
    value.forEach((item, i) => unknownFields(item, `${pointer}/${i}`, nodes, errors));
    return;
  }
  if (!node.listed && node.read.size === 0) return; // free form
  for (const key of Object.keys(value)) {
    const child = `${pointer}/${escape(key)}`;
    if (!node.listed && !node.read.has(key)) {
      errors.push(`${child}: unknown field (not in Argo CD's schema; the API server would prune it)`);
    } else {
      unknownFields(value[key], child, nodes, errors);
    }
  }
}

function validate(object, trace, strict = true) {
  const nodes = new Map();
  const errors = [];
  try {
    Application.prototype.validate.call(strict ? track(object, "", nodes) : object);
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err;
    for (const e of err.errors) errors.push(`${e.instancePath || "/"}: ${e.message ?? e.keyword}`);
  }
  if (strict) unknownFields(object, "", nodes, errors);
  const result = { errors: [...new Set(errors)] };
  if (trace) {
    result.nodes = Object.fromEntries(
      [...nodes].map(([p, n]) => [p, { read: [...n.read].sort(), listed: n.listed }]),
    );
  }
  return result;
}

// {"base": <Application>, "mutations": [{"pointer": "/a/0/b", "value": ..., "delete": bool}]}: one
// result per mutation of base (undone after each), checked by the package's validator alone (types and required
// fields; tests/support/argocd_schema.py compare_with_crd).
function mutated(base, { pointer, value, delete: remove }, check) {
  const keys = pointer.split("/").slice(1).map((k) => k.replaceAll("~1", "/").replaceAll("~0", "~"));
  let parent = base;
  for (const key of keys.slice(0, -1)) parent = parent[key];
  const key = keys.at(-1);
  const [had, old] = [Object.hasOwn(parent, key), parent[key]];
  if (remove) delete parent[key];
  else parent[key] = value;
  try {
    return check(base);
  } finally {
    if (had) parent[key] = old;
    else delete parent[key];
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const results = request.mutations
  ? request.mutations.map((m) => mutated(request.base, m, (o) => validate(o, false, false)))
  : request.objects.map((o) => validate(o, Boolean(request.trace)));
process.stdout.write(JSON.stringify(results));
