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

function validate(object, trace) {
  const nodes = new Map();
  const errors = [];
  try {
    Application.prototype.validate.call(track(object, "", nodes));
  } catch (err) {
    if (!Array.isArray(err.errors)) throw err;
    for (const e of err.errors) errors.push(`${e.instancePath || "/"}: ${e.message ?? e.keyword}`);
  }
  unknownFields(object, "", nodes, errors);
  const result = { errors: [...new Set(errors)] };
  if (trace) {
    result.nodes = Object.fromEntries(
      [...nodes].map(([p, n]) => [p, { read: [...n.read].sort(), listed: n.listed }]),
    );
  }
  return result;
}

// {"base": <Application>, "mutations": [{"pointer": "/a/0/b", "value": ..., "delete": bool}]}: one
// object per mutation of a copy of base (tests/support/argocd_schema.py compare_with_crd).
function mutate(base, { pointer, value, delete: remove }) {
  const object = structuredClone(base);
  const keys = pointer.split("/").slice(1).map((k) => k.replaceAll("~1", "/").replaceAll("~0", "~"));
  let parent = object;
  for (const key of keys.slice(0, -1)) parent = parent[key];
  if (remove) delete parent[keys.at(-1)];
  else parent[keys.at(-1)] = value;
  return object;
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const request = JSON.parse(input);
const objects = request.mutations ? request.mutations.map((m) => mutate(request.base, m)) : request.objects;
process.stdout.write(JSON.stringify(objects.map((o) => validate(o, Boolean(request.trace)))));
