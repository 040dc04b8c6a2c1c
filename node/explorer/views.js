// The explorer's views: each takes what it shows (read through `api`) and returns DOM.
// Text from the chain only ever enters the page as text nodes (never as HTML).

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// {status, body} of a JSON answer, whatever its status
export async function answer(path) {
  let response;
  try {
    response = await fetch(path, { headers: { Accept: "application/json" } });
  } catch (error) {
    throw new ApiError(0, `the node did not answer (${error.message})`);
  }
  try {
    return { status: response.status, body: await response.json() };
  } catch {
    throw new ApiError(response.status, `the node answered HTTP ${response.status}, not JSON`);
  }
}

export async function api(path) {
  const { status, body } = await answer(path);
  if (status < 200 || status > 299) throw new ApiError(status, body.message || `HTTP ${status}`);
  return body;
}

// ---- DOM helpers ----

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

// a path segment list that keeps "/" (identifiers hold slashes) and escapes the rest
export function pathOf(text) {
  return text.split("/").map(encodeURIComponent).join("/");
}

function pageQuery(fields) {
  const kept = Object.entries(fields).filter(([, value]) => value);
  return kept.length ? `?${new URLSearchParams(kept)}` : "";
}

export const href = {
  block: (ref) => `#/block/${encodeURIComponent(ref)}`,
  blocks: (before, limit) => `#/blocks${pageQuery({ before, limit })}`,
  tx: (id) => `#/tx/${id}`,
  id: (identifier) => `#/id/${pathOf(identifier)}`,
  prefix: (prefix, after, limit) => `#/prefix/${encodeURIComponent(prefix)}${pageQuery({ after, limit })}`,
  account: (bid, query = "") => `#/account/${encodeURIComponent(bid)}${query}`,
};

const link = (target, text, cls) => el("a", { href: target, class: cls }, text);
const hash = (hex) => el("code", { class: "hash", title: hex }, hex);
const short = (hex) => el("code", { class: "hash", title: hex }, hex.slice(0, 12) + "…");

function facts(pairs) {
  return el(
    "dl",
    { class: "facts" },
    pairs.filter(Boolean).map(([term, value]) => [el("dt", {}, term), el("dd", {}, value)]),
  );
}

function table(caption, headers, rows, options = {}) {
  const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", class: h.cls }, h.text ?? h)));
  const body = el("tbody", { id: options.bodyId, "data-keep": options.keep }, rows);
  return el(
    "div",
    { class: "scroll", role: "region", "aria-label": caption, tabindex: 0 },
    el("table", {}, el("caption", { class: "visually-hidden" }, caption), el("thead", {}, head), body),
  );
}

function localTime(iso) {
  return el("time", { datetime: iso, title: iso }, new Date(iso).toLocaleString());
}

function title(text, extra = null) {
  return el("h1", { tabindex: -1 }, text, extra ? [" ", extra] : null);
}

function badge(good, text) {
  return el("span", { class: `badge ${good ? "good" : "bad"}` }, text);
}

export function errorBox(message) {
  return el("p", { class: "error", role: "alert" }, message);
}

// ---- the network ----

export function blockRow(block, fresh = false) {
  return el(
    "tr",
    { class: fresh ? "fresh" : null, "data-height": block.height },
    el("td", {}, link(href.block(block.height), String(block.height))),
    el("td", {}, localTime(block.time)),
    el("td", {}, String(block.tx_count)),
    el("td", { class: "hide-narrow" }, block.proposer_name ?? ""),
    el("td", { class: "hide-narrow" }, link(href.block(block.hash), short(block.hash))),
  );
}

export const LATEST_BLOCKS = 10; // on the network view
export const PAGE_SIZE = 20; // a page of blocks or identifiers without ?limit=
const BLOCK_HEADERS = ["Height", "Time", "Txs", { text: "Proposer", cls: "hide-narrow" },
  { text: "Hash", cls: "hide-narrow" }];

// what the visitor pinned for this chain: its hash, whether it is this node's, and a way
// to forget it
function pinnedGenesis(pinnedHash, nodeHash, onForget) {
  if (!pinnedHash) return "none yet (an identifier's view offers to pin one)";
  const forget = el("button", { type: "button" }, "Forget");
  forget.addEventListener("click", onForget);
  const same = pinnedHash === nodeHash;
  return [hash(pinnedHash), " ", same ? badge(true, "this node's") : badge(false, "not this node's"), " ", forget];
}

export function networkView(status, latest, pinnedHash = null, onForget = null) {
  const ready = status.ready
    ? badge(true, "ready")
    : badge(false, `not ready: ${status.ready_reason}`);
  return [
    title("Network"),
    facts([
      ["Chain id", status.chain_id],
      ["Node", `${status.node} (${status.role})`],
      ["Height", el("span", { id: "network-height" }, String(status.height))],
      status.last_block && ["Last block", [localTime(status.last_block.time), " ",
        link(href.block(status.last_block.hash), short(status.last_block.hash))]],
      ["Readiness", [ready, status.syncing ? " syncing" : ""]],
      ["State root", hash(status.state_root)],
      ["Genesis hash", hash(status.genesis_hash)],
      ["Pinned genesis", el("span", { id: "pinned-genesis" }, pinnedGenesis(pinnedHash, status.genesis_hash, onForget))],
    ]),
    el("h2", {}, "Validators"),
    table(
      "Validators",
      ["Name", "Last signed height", { text: "Public key", cls: "hide-narrow" }],
      status.validators.map((v) =>
        el(
          "tr",
          {},
          el("td", {}, link(href.account(v.bid), v.name)),
          el("td", {}, v.last_signed_height === null
            ? `not in the last ${status.signed_scan_blocks} blocks`
            : link(href.block(v.last_signed_height), String(v.last_signed_height))),
          el("td", { class: "hide-narrow" }, short(v.public_key)),
        ),
      ),
    ),
    el("h2", {}, "Peers"),
    status.peers.length === 0
      ? el("p", {}, "No peers configured.")
      : table(
          "Peers",
          ["Name", "Address", "Connected", "Height"],
          status.peers.map((p) =>
            el(
              "tr",
              {},
              el("td", {}, p.name || "—"),
              el("td", {}, p.address),
              el("td", {}, p.connected ? badge(true, "yes") : badge(false, "no")),
              el("td", {}, String(p.height)),
            ),
          ),
        ),
    el("h2", {}, "Latest blocks"),
    table("Latest blocks", BLOCK_HEADERS, latest.blocks.map((b) => blockRow(b)), {
      bodyId: "live-blocks",
      keep: LATEST_BLOCKS,
    }),
    el("p", {}, link(href.blocks(), "All blocks")),
  ];
}

export function blocksView(page, before, limit) {
  const pager = el(
    "div",
    { class: "pager" },
    before ? link(href.blocks("", limit), "Newest blocks") : null,
    page.next_before ? link(href.blocks(page.next_before, limit), "Older blocks") : null,
  );
  return [
    title("Blocks"),
    el("p", {}, `The chain has ${page.height} blocks; latest first.`),
    page.blocks.length === 0
      ? el("p", {}, "No block here.")
      : table("Blocks", BLOCK_HEADERS, page.blocks.map((b) => blockRow(b)), {
          bodyId: before ? null : "live-blocks",
          keep: Number(limit) || PAGE_SIZE,
        }),
    pager,
  ];
}

function signers(certificate) {
  if (!certificate) return "—";
  return el(
    "ul",
    { class: "plain" },
    certificate.signers.map((s) => el("li", {}, s.name || "(unknown)", " ", short(s.public_key))),
  );
}

function subjectLink(tx) {
  if (!tx.subject) return "—";
  return tx.subject.includes("/") ? link(href.id(tx.subject), tx.subject) : link(href.prefix(tx.subject), tx.subject);
}

export function blockView(block) {
  const h = block.header;
  return [
    title(`Block ${block.height}`),
    el(
      "div",
      { class: "pager" },
      block.height > 1 ? link(href.block(block.height - 1), `← Block ${block.height - 1}`) : null,
      link(href.block(block.height + 1), `Block ${block.height + 1} →`),
    ),
    facts([
      ["Hash", hash(block.hash)],
      ["Time", localTime(h.time)],
      ["Proposer", [h.proposer_name || "(unknown)", " ", short(h.proposer)]],
      ["Previous block", h.prev_hash ? link(href.block(h.prev_hash), short(h.prev_hash)) : "genesis"],
      ["Tx root", hash(h.tx_root)],
      ["State root", hash(h.state_root)],
      ["Validators hash", hash(h.validators_hash)],
      ["Chain id", h.chain_id],
    ]),
    el("h2", {}, `Transactions (${block.txs.length})`),
    block.txs.length === 0
      ? el("p", {}, "No transactions in this block.")
      : table(
          "Transactions",
          ["Tx id", "Operation", "Subject", { text: "Signer", cls: "hide-narrow" }],
          block.txs.map((tx) =>
            el(
              "tr",
              {},
              el("td", {}, link(href.tx(tx.id), short(tx.id))),
              el("td", {}, tx.op),
              el("td", {}, subjectLink(tx)),
              el("td", { class: "hide-narrow" }, tx.signer ? link(href.account(tx.signer), tx.signer) : "validators"),
            ),
          ),
        ),
    el("h2", {}, "Commit certificate"),
    block.certificate
      ? el("p", {}, `Round ${block.certificate.round}, signed by ${block.certificate.signers.length}:`)
      : el("p", {}, "No certificate stored yet."),
    signers(block.certificate),
  ];
}

export function txView(tx) {
  return [
    title("Transaction"),
    facts([
      ["Tx id", hash(tx.id)],
      ["Operation", tx.op],
      ["Subject", subjectLink(tx)],
      ["Signer", tx.signer ? link(href.account(tx.signer), tx.signer) : "validators (governance)"],
      ["Block", [link(href.block(tx.height), String(tx.height)), ` (tx ${tx.index})`]],
      ["Time", localTime(tx.time)],
      ["Expires", new Date(tx.expires_at_ms).toISOString()],
      ["Chain id", tx.chain_id],
    ]),
    el("h2", {}, "Body"),
    el("pre", { tabindex: 0, "aria-label": "Body as JSON" }, JSON.stringify(tx.body, null, 2)),
  ];
}

function valueText(value) {
  const data = value.data;
  if (data.format === "string") return el("span", { class: "wrap" }, data.value);
  return el("span", {}, "base64: ", el("code", { class: "hash" }, data.value));
}

// ---- verification in the browser ----

export function genesisPrompt(chainId, genesisHash, onPin, onFile) {
  const pin = el("button", { type: "button" }, "Pin this genesis");
  pin.addEventListener("click", onPin);
  const file = el("input", { type: "file", id: "genesis-file", accept: ".json,application/json" });
  file.addEventListener("change", () => file.files[0] && onFile(file.files[0]));
  return el(
    "section",
    { class: "trust", "aria-labelledby": "trust-title" },
    el("h2", { id: "trust-title" }, "Check answers in this browser"),
    el("p", {}, `Pin the genesis of chain ${chainId} you trust; this page then checks every `
      + "record's proof against it, trusting no node. This node's genesis hash is:"),
    el("p", {}, el("code", { class: "hash", id: "offered-genesis-hash" }, genesisHash)),
    el("p", {}, "Compare it with the hash your operator gave you, then: ", pin),
    el("p", {}, el("label", { for: "genesis-file" }, "Or load a genesis file: "), file),
  );
}

// `checkedWith` names the crypto that checked (crypto.js's label)
export function proofBadge(result, pinnedHash, checkedWith) {
  const how = `checked in this browser with ${checkedWith} against the pinned genesis `
    + `${pinnedHash.slice(0, 12)}…`;
  if (!result.ok) {
    return el(
      "div",
      { class: "proof bad", role: "status", id: "proof" },
      el("strong", {}, `✗ Not verified: ${result.reason}`),
      el("p", {}, result.detail),
      el("p", { class: "help-text" }, how),
    );
  }
  const what = result.present ? "Verified" : "Verified absent";
  return el(
    "div",
    { class: "proof good", role: "status", id: "proof" },
    el("strong", {}, `✓ ${what} at height ${result.height} by ${result.signers} of ${result.validators} validators`),
    el("p", { class: "help-text" }, `${how}; block time ${new Date(result.timeMs).toISOString()}. `
      + "A proof shows the record as of that block, not that nothing changed since."),
  );
}

export function absentView(identifier, verification) {
  return [
    title(identifier, badge(false, "not registered")),
    el("p", {}, `${identifier} is not registered on this chain.`),
    verification,
  ];
}

export function identifierView(identifier, shown, history, verification) {
  const revoked = shown.status === "REVOKED";
  return [
    title(history.identifier, revoked ? badge(false, "REVOKED") : badge(true, "ACTIVE")),
    verification,
    facts([
      ["Owner", link(href.account(shown.owner), shown.owner)],
      ["Prefix", link(href.prefix(history.identifier.split("/")[0]), history.identifier.split("/")[0])],
      ["Registered at", link(href.block(history.created_height), `block ${history.created_height}`)],
      ["Last changed at", link(href.block(history.updated_height), `block ${history.updated_height}`)],
      revoked && ["Revoked because", shown.revokeReason || history.revoke_reason || "—"],
    ]),
    el("h2", {}, "Values"),
    shown.values.length === 0
      ? el("p", {}, "No values.")
      : table(
          "Values",
          ["Index", "Type", "Data", { text: "TTL", cls: "hide-narrow" }],
          shown.values.map((v) =>
            el(
              "tr",
              {},
              el("td", {}, String(v.index)),
              el("td", {}, v.type),
              el("td", {}, valueText(v)),
              el("td", { class: "hide-narrow" }, `${v.ttl} s`),
            ),
          ),
        ),
    el("h2", {}, "History"),
    table(
      "History",
      ["Block", "Time", "Operation", { text: "Tx", cls: "hide-narrow" }],
      history.entries.map((entry) =>
        el(
          "tr",
          {},
          el("td", {}, link(href.block(entry.height), String(entry.height))),
          el("td", {}, localTime(entry.time)),
          el("td", {}, entry.op),
          el("td", { class: "hide-narrow" }, link(href.tx(entry.tx_id), short(entry.tx_id))),
        ),
      ),
    ),
  ];
}

export function prefixView(prefix, after, limit) {
  return [
    title(`Prefix ${prefix.prefix}`),
    facts([
      ["Owner", link(href.account(prefix.owner), prefix.owner)],
      ["Registrars", prefix.registrars.length
        ? el("ul", { class: "plain" }, prefix.registrars.map((r) => el("li", {}, link(href.account(r), r))))
        : "none"],
      ["Created at", prefix.created_height ? link(href.block(prefix.created_height), `block ${prefix.created_height}`) : "genesis"],
    ]),
    el("h2", {}, "Child prefixes"),
    prefix.children.length
      ? el("ul", { class: "plain" }, prefix.children.map((c) => el("li", {}, link(href.prefix(c), c))))
      : el("p", {}, "None."),
    el("h2", {}, "Identifiers"),
    prefix.identifiers.length === 0
      ? el("p", {}, after ? "No more identifiers." : "No identifiers under this prefix.")
      : table(
          "Identifiers",
          ["Identifier", "Status"],
          prefix.identifiers.map((r) =>
            el("tr", {}, el("td", {}, link(href.id(r.identifier), r.identifier)), el("td", {}, r.status)),
          ),
        ),
    el(
      "div",
      { class: "pager" },
      after ? link(href.prefix(prefix.prefix, "", limit), "First page") : null,
      prefix.next_after
        ? link(href.prefix(prefix.prefix, prefix.next_after, limit), "Next identifiers")
        : null,
    ),
  ];
}

export function accountView(account) {
  const more = (key, value) => `?${key}=${encodeURIComponent(value)}`;
  return [
    title("Account"),
    facts([["BID", el("code", { class: "hash" }, account.bid)]]),
    el("h2", {}, "Prefixes it owns"),
    account.prefixes.length
      ? el("ul", { class: "plain" }, account.prefixes.map((p) => el("li", {}, link(href.prefix(p), p))))
      : el("p", {}, "None."),
    account.next_prefixes_after
      ? link(href.account(account.bid, more("prefixes_after", account.next_prefixes_after)), "More prefixes")
      : null,
    el("h2", {}, "Identifiers it owns"),
    account.identifiers.length
      ? el("ul", { class: "plain" }, account.identifiers.map((i) => el("li", {}, link(href.id(i), i))))
      : el("p", {}, "None."),
    account.next_identifiers_after
      ? link(href.account(account.bid, more("identifiers_after", account.next_identifiers_after)), "More identifiers")
      : null,
  ];
}
