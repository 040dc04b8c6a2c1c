// A proof-bundle verifier for the browser (docs/proof-bundle.md, version 1, with the
// validator-set changes of §6.1 followed from the genesis set), with the
// SHA-256 and Ed25519 of `subtle`: WebCrypto's, or crypto.js's bundled noble ones where the
// page has no WebCrypto. It trusts only the genesis it is given; the checks run in the order
// of the specification's §6 table, and the first that fails names the reason.
// It verifies SHA-256 chains only: a chain whose genesis chose "hash": "sm3" (issue 16) is
// refused with UNSUPPORTED_HASH, never reported verified; `spark verify` checks those.
//
//   const result = await verifyBundle(bundle, genesis, (await cryptoProvider()).subtle);
//   // {ok: true, present, height, timeMs, signers, validators, record (the view)}
//   // {ok: false, reason: "VIEW_MISMATCH", detail: "…"}

const FORMAT = "sparkchain-proof-bundle";
const BUNDLE_FIELDS = ["format", "version", "chain_id", "genesis_hash", "identifier", "record",
  "state_proof", "header", "certificate", "validator_changes"];
const MAX_RECORD_BYTES = 65536;
const MAX_HEADER_BYTES = 1024;
const MAX_STATE_PROOF_BYTES = 32962;
const MAX_CERTIFICATE_BYTES = 262144;
const MAX_IDENTIFIER_BYTES = 255;
const MAX_VALIDATOR_CHANGES = 256;
const MAX_VALIDATORS = 128;
const CHANGE_FIELDS = ["header", "certificate", "validators"];
const MAX_TREE_DEPTH = 64;
const DEFAULT_TTL_S = 86400;
const PRECOMMIT = 2;
const utf8 = new TextEncoder();

class Refused extends Error {
  constructor(reason, detail) {
    super(detail);
    this.reason = reason;
  }
}

const refuse = (reason, detail) => { throw new Refused(reason, detail); };

// ---- bytes ----

const hex = (bytes) => Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");

function fromHex(text) {
  if (typeof text !== "string" || !/^([0-9a-fA-F]{2})*$/.test(text)) return null;
  return Uint8Array.from(text.match(/../g) || [], (pair) => parseInt(pair, 16));
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) { out.set(part, at); at += part.length; }
  return out;
}

const equalBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);

function toBase64(bytes) {
  let text = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    text += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(text);
}

// canonical base64 (RFC 4648 §4): decoding and re-encoding gives the same text
function fromBase64(text, what, maxBytes) {
  if (typeof text !== "string" || text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    refuse("MALFORMED", `${what} is not base64`);
  }
  const raw = atob(text);
  const bytes = Uint8Array.from(raw, (ch) => ch.charCodeAt(0));
  if (toBase64(bytes) !== text) refuse("MALFORMED", `${what} is not canonical base64`);
  if (bytes.length > maxBytes) refuse("MALFORMED", `${what} is ${bytes.length} bytes, at most ${maxBytes}`);
  return bytes;
}

// ---- protobuf: a strict reader of canonical encodings (§3) ----

const STRING = "string", BYTES = "bytes", U64 = "u64", U32 = "u32";
const COMMIT_SIG = { 1: ["validator", BYTES], 2: ["signature", BYTES] };
const VALUE = { 1: ["index", U32], 2: ["type", STRING], 3: ["data", BYTES],
  4: ["ttl", U32, "optional"], 5: ["timestamp_ms", U64] };
const HEADER = { 1: ["chain_id", STRING], 2: ["height", U64], 3: ["time_ms", U64],
  4: ["prev_hash", BYTES], 5: ["last_commit_hash", BYTES], 6: ["tx_root", BYTES],
  7: ["state_root", BYTES], 8: ["validators_hash", BYTES], 9: ["proposer", BYTES] };
const CERTIFICATE = { 1: ["height", U64], 2: ["round", U32], 3: ["block_hash", BYTES],
  4: ["signatures", COMMIT_SIG, "repeated"] };
const RECORD = { 1: ["identifier", STRING], 2: ["key", STRING], 3: ["owner", STRING],
  4: ["status", U32], 5: ["created_height", U64], 6: ["created_time_ms", U64],
  7: ["updated_height", U64], 8: ["updated_time_ms", U64], 9: ["values", VALUE, "repeated"],
  10: ["revoke_reason", STRING] };

function defaults(schema) {
  const message = {};
  for (const [name, type, label] of Object.values(schema)) {
    if (label === "repeated") message[name] = [];
    else if (label === "optional") message[name] = null;
    else message[name] = type === STRING ? "" : type === BYTES ? new Uint8Array() : 0;
  }
  return message;
}

function decode(bytes, schema, what) {
  const bad = (why) => refuse("MALFORMED", `${what} is not a canonical encoding: ${why}`);
  let at = 0;
  const varint = () => {
    let value = 0n, shift = 0n, start = at;
    for (;;) {
      if (at >= bytes.length || at - start >= 10) bad("a truncated number");
      const byte = bytes[at++];
      value |= BigInt(byte & 0x7f) << shift;
      if (!(byte & 0x80)) {
        if (byte === 0 && at - start > 1) bad("a number in more bytes than needed");
        if (value >= 1n << 64n) bad("a number beyond 64 bits");
        return value;
      }
      shift += 7n;
    }
  };
  const message = defaults(schema);
  let last = 0;
  while (at < bytes.length) {
    const tag = varint();
    const number = Number(tag >> 3n), wire = Number(tag & 7n);
    const field = schema[number];
    if (!field) bad(`an unknown field ${number}`);
    const [name, type, label] = field;
    if (number < last || (number === last && label !== "repeated")) bad(`field ${name} out of order or twice`);
    last = number;
    if (type === U64 || type === U32) {
      if (wire !== 0) bad(`field ${name} has the wrong wire type`);
      const value = varint();
      if (type === U32 && value > 0xffffffffn) bad(`field ${name} beyond 32 bits`);
      if (value > BigInt(Number.MAX_SAFE_INTEGER)) bad(`field ${name} beyond 2^53 - 1`);
      if (value === 0n && label !== "optional") bad(`field ${name} written at its default`);
      message[name] = Number(value);
    } else {
      if (wire !== 2) bad(`field ${name} has the wrong wire type`);
      const length = Number(varint());
      if (at + length > bytes.length) bad(`field ${name} is truncated`);
      const body = bytes.subarray(at, at + length);
      at += length;
      if (typeof type === "object") {
        message[name].push(decode(body, type, what));
      } else {
        if (length === 0) bad(`field ${name} written at its default`);
        if (type === BYTES) message[name] = body;
        else {
          try {
            message[name] = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(body);
          } catch {
            bad(`field ${name} is not UTF-8`);
          }
        }
      }
    }
  }
  return message;
}

// ---- views (§5) ----

function headerView(h) {
  return { chain_id: h.chain_id, height: h.height, time_ms: h.time_ms, prev_hash: hex(h.prev_hash),
    last_commit_hash: hex(h.last_commit_hash), tx_root: hex(h.tx_root), state_root: hex(h.state_root),
    validators_hash: hex(h.validators_hash), proposer: hex(h.proposer) };
}

function certificateView(c) {
  return { height: c.height, round: c.round, block_hash: hex(c.block_hash),
    signatures: c.signatures.map((s) => ({ validator: hex(s.validator), signature: hex(s.signature) })) };
}

function utcSeconds(ms) {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.\d{3}Z$/, "Z");
}

function recordView(r) {
  const view = { handle: r.identifier, owner: r.owner,
    status: { 1: "ACTIVE", 2: "REVOKED" }[r.status] ?? String(r.status) };
  if (r.revoke_reason) view.revokeReason = r.revoke_reason;
  view.values = r.values.map((v) => {
    let data;
    try {
      const text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(v.data);
      data = { format: "string", value: text };
    } catch {
      data = { format: "base64", value: toBase64(v.data) };
    }
    return { index: v.index, type: v.type, data, ttl: v.ttl ?? DEFAULT_TTL_S,
      timestamp: utcSeconds(v.timestamp_ms) };
  });
  return view;
}

function sameJson(a, b) {
  if (Array.isArray(a) || Array.isArray(b)) {
    return Array.isArray(a) && Array.isArray(b) && a.length === b.length && a.every((x, i) => sameJson(x, b[i]));
  }
  if (a === null || b === null || typeof a !== "object" || typeof b !== "object") {
    return typeof a === typeof b && a === b;
  }
  const keys = Object.keys(a);
  return keys.length === Object.keys(b).length
    && keys.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
}

function part(holder, name, schema, view, maxBytes, what = name) {
  const bytes = fromBase64(holder[name].bytes, `${what}.bytes`, maxBytes);
  const message = decode(bytes, schema, what);
  if (!sameJson(holder[name].view, view(message))) {
    refuse("VIEW_MISMATCH", `the ${what}'s view differs from its bytes`);
  }
  return { bytes, message };
}

// ---- genesis (§2) and identifiers (§4) ----

function canonicalJson(value) {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const keys = Object.keys(value).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

const SUPPORTED_HASH = "sha256";
const chainHash = (genesis) => genesis.hash ?? SUPPORTED_HASH;
const unsupportedHash = (genesis) => `this chain hashes with ${String(chainHash(genesis)).toUpperCase()} `
  + `(its genesis says "hash": ${JSON.stringify(chainHash(genesis))}); this page verifies SHA-256 `
  + "chains only: check the bundle with `spark verify`";

export async function genesisHash(genesis, subtle = globalThis.crypto?.subtle) {
  if (chainHash(genesis) !== SUPPORTED_HASH) throw new Error(unsupportedHash(genesis));
  const parsed = {
    chain_id: genesis.chain_id,
    genesis_time_ms: genesis.genesis_time_ms,
    validators: genesis.validators.map((v) => ({ name: v.name, public_key: v.public_key.toLowerCase() })),
    root_authorities: genesis.root_authorities ?? [],
    prefixes: (genesis.prefixes ?? []).map((p) => ({ prefix: p.prefix, owner: p.owner })),
  };
  const text = utf8.encode("spark/genesis/v1" + canonicalJson(parsed));
  return hex(await sha256(subtle, text));
}

const asciiUpper = (text) => text.replace(/[a-z]+/g, (run) => run.toUpperCase());

function validIdentifier(text) {
  if (typeof text !== "string" || utf8.encode(text).length > MAX_IDENTIFIER_BYTES) return false;
  const slash = text.indexOf("/");
  if (slash < 0) return false;
  const prefix = text.slice(0, slash), suffix = text.slice(slash + 1);
  if (!prefix.split(".").every((segment) => /^[A-Za-z0-9-]+$/.test(segment))) return false;
  return suffix.length > 0 && suffix.normalize("NFC") === suffix
    && !/[\p{Cc}\p{Cf}\p{Cs}]/u.test(suffix) && suffix.trim() === suffix;
}

// ---- hashing and signatures ----

async function sha256(subtle, bytes) {
  return new Uint8Array(await subtle.digest("SHA-256", bytes));
}

function u64be(n) {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, BigInt(n));
  return out;
}

function u32be(n) {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, n);
  return out;
}

function precommitBytes(chainId, height, round, blockHash) {
  const chain = utf8.encode(chainId);
  return concat(utf8.encode("spark/vote/v1"), [chain.length], chain, [PRECOMMIT], u64be(height),
    u32be(round), [blockHash.length], blockHash);
}

async function signatureHolds(subtle, publicKey, signature, message) {
  try {
    const key = await subtle.importKey("raw", publicKey, { name: "Ed25519" }, false, ["verify"]);
    return await subtle.verify({ name: "Ed25519" }, key, signature, message);
  } catch {
    return false;
  }
}

// ---- the state proof (§4) ----

const nibble = (key, depth) => (depth % 2 === 0 ? key[depth >> 1] >> 4 : key[depth >> 1] & 15);
const popcount = (n) => n.toString(2).replaceAll("0", "").length;

async function stateRootOf(subtle, proof, treeKey, recordBytes) {
  const bad = (why) => refuse("STATE_PROOF_MISMATCH", `the state proof does not hold: ${why}`);
  if (proof.length < 2) bad("it is truncated");
  const kind = proof[0], n = proof[1];
  if (kind > 2 || n > MAX_TREE_DEPTH) bad("unknown kind or too deep");
  if ((kind === 0) !== (recordBytes !== null)) {
    bad(recordBytes === null ? "it proves a record the bundle says is absent" : "it proves an absence");
  }
  let at = 2;
  const nodes = [];
  for (let i = 0; i < n; i++) {
    if (at + 2 > proof.length) bad("a node is truncated");
    const occupied = (proof[at] << 8) | proof[at + 1];
    at += 2;
    const own = (occupied >> nibble(treeKey, i)) & 1;
    if (i < n - 1 && !own) bad("the path leaves the key's slot");
    if (i === n - 1 && (own === 0) !== (kind === 1)) bad("the last node contradicts the kind");
    const count = popcount(occupied) - own;
    if (at + 32 * count > proof.length) bad("a node's hashes are truncated");
    const hashes = [];
    for (let j = 0; j < count; j++) hashes.push(proof.subarray(at + 32 * j, at + 32 * (j + 1)));
    at += 32 * count;
    nodes.push({ occupied, hashes });
  }
  let h = null;
  if (kind === 2) {
    if (proof.length - at !== 64) bad("another key's leaf is not 64 bytes");
    const otherKey = proof.subarray(at, at + 32), otherValueHash = proof.subarray(at + 32, at + 64);
    if (equalBytes(otherKey, treeKey)) bad("the other key is the key itself");
    for (let d = 0; d < n; d++) if (nibble(otherKey, d) !== nibble(treeKey, d)) bad("the other key is elsewhere");
    h = await sha256(subtle, concat([2], otherKey, otherValueHash));
  } else {
    if (at !== proof.length) bad("bytes after the path");
    if (kind === 0) h = await sha256(subtle, concat([2], treeKey, await sha256(subtle, recordBytes)));
  }
  for (let i = n - 1; i >= 0; i--) {
    const { occupied, hashes } = nodes[i];
    const children = [...hashes];
    if (h !== null) children.splice(popcount(occupied & ((1 << nibble(treeKey, i)) - 1)), 0, h);
    h = await sha256(subtle, concat([3, occupied >> 8, occupied & 0xff], ...children));
  }
  return h ?? new Uint8Array(32);
}

// ---- the bundle (§6) ----

function checkForm(bundle) {
  const bad = (why) => refuse("MALFORMED", why);
  const keys = Object.keys(bundle);
  if (keys.length !== BUNDLE_FIELDS.length || !BUNDLE_FIELDS.every((k) => keys.includes(k))) {
    bad(`the bundle's fields are not exactly ${BUNDLE_FIELDS.join(", ")}`);
  }
  for (const name of ["chain_id", "identifier", "state_proof"]) {
    if (typeof bundle[name] !== "string") bad(`${name} is not a string`);
  }
  if (typeof bundle.genesis_hash !== "string" || !/^[0-9a-f]{64}$/.test(bundle.genesis_hash)) {
    bad("genesis_hash is not 64 lowercase hex characters");
  }
  if (!validIdentifier(bundle.identifier)) bad(`identifier ${JSON.stringify(bundle.identifier)} is not valid`);
  for (const name of ["record", "header", "certificate"]) {
    const part = bundle[name];
    if (name === "record" && part === null) continue;
    if (part === null || typeof part !== "object" || Array.isArray(part)
      || Object.keys(part).sort().join() !== "bytes,view" || typeof part.bytes !== "string") {
      bad(`${name} is not an object of exactly bytes and view`);
    }
  }
  if (!Array.isArray(bundle.validator_changes)) bad("validator_changes is not an array");
  if (bundle.validator_changes.length > MAX_VALIDATOR_CHANGES) bad("validator_changes holds too many changes");
  bundle.validator_changes.forEach((change, i) => {
    const what = `validator_changes[${i}]`;
    if (change === null || typeof change !== "object" || Array.isArray(change)
      || Object.keys(change).sort().join() !== [...CHANGE_FIELDS].sort().join()) {
      bad(`${what} is not an object of exactly ${CHANGE_FIELDS.join(", ")}`);
    }
    for (const name of ["header", "certificate"]) {
      const inner = change[name];
      if (inner === null || typeof inner !== "object" || Array.isArray(inner)
        || Object.keys(inner).sort().join() !== "bytes,view") {
        bad(`${what}.${name} is not an object of exactly bytes and view`);
      }
    }
    const keys = change.validators;
    if (!Array.isArray(keys) || keys.length < 1 || keys.length > MAX_VALIDATORS
      || !keys.every((k) => typeof k === "string" && /^[0-9a-f]{64}$/.test(k))) {
      bad(`${what}.validators is not a list of 1 to ${MAX_VALIDATORS} keys in lowercase hex`);
    }
  });
}

// a certificate of the header by a quorum of `keys` (§6 checks 11 to 15); the signer count
async function certify(subtle, chainId, keys, header, certificate) {
  const h = header.message, c = certificate;
  const blockHash = await sha256(subtle, header.bytes);
  if (c.height !== h.height || !equalBytes(c.block_hash, blockHash)) {
    refuse("CERTIFICATE_MISMATCH", `the certificate is not of the header of block ${h.height}`);
  }
  const known = new Set(keys.map(hex));
  const seen = new Set();
  for (const sig of c.signatures) {
    if (!known.has(hex(sig.validator))) refuse("UNKNOWN_SIGNER", `${hex(sig.validator)} is not a validator of block ${c.height}`);
    if (seen.has(hex(sig.validator))) refuse("DUPLICATE_SIGNER", `${hex(sig.validator)} signs twice`);
    seen.add(hex(sig.validator));
  }
  const quorum = Math.floor((2 * keys.length) / 3) + 1;
  if (seen.size < quorum) refuse("TOO_FEW_SIGNERS", `${seen.size} signers of block ${c.height}, a quorum is ${quorum} of ${keys.length}`);
  const signed = precommitBytes(chainId, c.height, c.round, c.block_hash);
  for (const sig of c.signatures) {
    if (!await signatureHolds(subtle, sig.validator, sig.signature, signed)) {
      refuse("BAD_CERTIFICATE", `the signature of ${hex(sig.validator)} on block ${c.height} does not hold`);
    }
  }
  return seen.size;
}

// §6.1: the validator sets from the genesis on, [{from: height it signs from, keys}],
// each change's header certified by the set before it
async function followChanges(subtle, chainId, genesisKeys, changes) {
  const sets = [{ from: 1, keys: genesisKeys }];
  for (const [i, change] of changes.entries()) {
    const what = `validator_changes[${i}]`;
    const h = change.header.message;
    if (change.header.bytes.length === 0) refuse("MALFORMED", `${what} has no block header`);
    if (h.chain_id !== chainId) refuse("WRONG_CHAIN", `${what}: the header is of chain ${h.chain_id}`);
    const before = sets[sets.length - 1];
    if (h.height < before.from) {
      refuse("MALFORMED", `${what}: block ${h.height} is before block ${before.from}, from which the set before it signs`);
    }
    if (new Set(change.keys.map(hex)).size !== change.keys.length) refuse("MALFORMED", `${what}: a validator twice`);
    if (!equalBytes(h.validators_hash, await sha256(subtle, concat(...change.keys)))) {
      refuse("WRONG_VALIDATORS", `${what}: block ${h.height} does not commit to the validators given`);
    }
    await certify(subtle, chainId, before.keys, change.header, change.certificate);
    sets.push({ from: h.height + 1, keys: change.keys });
  }
  return sets;
}

const keysAt = (sets, height) => sets.filter((s) => s.from <= height).pop()?.keys ?? sets[0].keys;

async function check(bundle, genesis, subtle) {
  if (chainHash(genesis) !== SUPPORTED_HASH) refuse("UNSUPPORTED_HASH", unsupportedHash(genesis));
  if (bundle === null || typeof bundle !== "object" || bundle.format !== FORMAT
    || typeof bundle.version !== "number" || bundle.version !== 1) {
    refuse("UNSUPPORTED_VERSION", "not a version 1 proof bundle");
  }
  checkForm(bundle);
  if (bundle.chain_id !== genesis.chain_id) {
    refuse("WRONG_CHAIN", `the bundle is of chain ${bundle.chain_id}, the genesis of ${genesis.chain_id}`);
  }
  if (bundle.genesis_hash !== await genesisHash(genesis, subtle)) {
    refuse("GENESIS_MISMATCH", "the bundle names another genesis than the one pinned");
  }
  const changes = bundle.validator_changes.map((change, i) => {
    const what = `validator_changes[${i}]`;
    const header = part(change, "header", HEADER, headerView, MAX_HEADER_BYTES, `${what}.header`);
    const certificate = part(change, "certificate", CERTIFICATE, certificateView, MAX_CERTIFICATE_BYTES,
      `${what}.certificate`);
    return { header, certificate: certificate.message, keys: change.validators.map(fromHex) };
  });
  const header = part(bundle, "header", HEADER, headerView, MAX_HEADER_BYTES);
  const certificate = part(bundle, "certificate", CERTIFICATE, certificateView, MAX_CERTIFICATE_BYTES);
  const record = bundle.record === null ? null : part(bundle, "record", RECORD, recordView, MAX_RECORD_BYTES);
  const proof = fromBase64(bundle.state_proof, "state_proof", MAX_STATE_PROOF_BYTES);
  const h = header.message;
  const genesisKeys = genesis.validators.map((v) => fromHex(v.public_key));
  const sets = await followChanges(subtle, genesis.chain_id, genesisKeys, changes);
  if (h.chain_id !== genesis.chain_id) refuse("WRONG_CHAIN", `the header is of chain ${h.chain_id}`);
  if (!equalBytes(h.validators_hash, await sha256(subtle, concat(...keysAt(sets, h.height + 1))))) {
    refuse("WRONG_VALIDATORS", "the header names another validator set than the genesis and the changes give");
  }
  const keys = keysAt(sets, h.height);
  const signers = await certify(subtle, genesis.chain_id, keys, header, certificate.message);
  const treeKey = await sha256(subtle, concat([1], utf8.encode("r"), utf8.encode(asciiUpper(bundle.identifier))));
  const root = await stateRootOf(subtle, proof, treeKey, record && record.bytes);
  if (!equalBytes(root, h.state_root)) refuse("STATE_PROOF_MISMATCH", "the state proof leads to another state root");
  if (record && record.message.key !== asciiUpper(bundle.identifier)) {
    refuse("IDENTIFIER_MISMATCH", `the record is of ${record.message.identifier}, not ${bundle.identifier}`);
  }
  return { ok: true, present: record !== null, height: h.height, timeMs: h.time_ms,
    signers, validators: keys.length, record: record && bundle.record.view };
}

export async function verifyBundle(bundle, genesis, subtle = globalThis.crypto?.subtle) {
  if (!subtle) {
    return { ok: false, reason: "NO_WEBCRYPTO",
      detail: "this page is not a secure context (HTTPS or localhost): the browser gives it no WebCrypto" };
  }
  try {
    return await check(bundle, genesis, subtle);
  } catch (error) {
    if (error instanceof Refused) return { ok: false, reason: error.reason, detail: error.message };
    return { ok: false, reason: "MALFORMED", detail: String(error && error.message) };
  }
}
