// The explorer's shell: the header (node name, chain id, height), hash routing
// (#/block/12, #/id/88.608/X, ...), the search box and the live block feed.
import { cryptoProvider } from "./crypto.js";
import { genesisHash, verifyBundle } from "./verify.js";
import {
  absentView,
  answer,
  api,
  ApiError,
  accountView,
  PAGE_SIZE,
  LATEST_BLOCKS,
  blockRow,
  blockView,
  blocksView,
  el,
  errorBox,
  genesisPrompt,
  href,
  identifierView,
  networkView,
  pathOf,
  prefixView,
  proofBadge,
  txView,
} from "./views.js";

const main = document.getElementById("content");
let navigation = 0; // a render for an older navigation is dropped
let firstRender = true;

function show(nodes, label) {
  main.replaceChildren(...[nodes].flat(Infinity).filter(Boolean));
  document.title = `${label} · sparkchain explorer`;
  document.getElementById("announce").textContent = `${label} loaded`;
  const heading = main.querySelector("h1");
  if (heading && !firstRender) heading.focus();
  firstRender = false;
}

function showError(label, error) {
  const what = error.status === 404 ? "Not found" : "Could not load this view";
  show([el("h1", { tabindex: -1 }, what), errorBox(`${label}: ${error.message}`)], what);
}

function query(text) {
  return new URLSearchParams(text || "");
}

// each route: a pattern over the hash path and what it renders
const routes = [
  [/^$/, async () => {
    const [status, latest] = await Promise.all([api("/api/status"), api(`/api/blocks?limit=${LATEST_BLOCKS}`)]);
    showIdentity(status);
    const trusted = pinned(status.chain_id);
    const pinnedHash = trusted && globalThis.crypto?.subtle ? await genesisHash(trusted) : null;
    const forget = () => { unpin(status.chain_id); route(); };
    return [networkView(status, latest, pinnedHash, forget), "Network"];
  }],
  [/^blocks$/, async (_, params) => {
    const before = params.get("before") || "";
    const page = await api(`/api/blocks?${paging(params, "before")}`);
    return [blocksView(page, before, params.get("limit") || ""), "Blocks"];
  }],
  [/^block\/(.+)$/, async ([ref]) => {
    const block = await api(`/api/blocks/${encodeURIComponent(ref)}`);
    return [blockView(block), `Block ${block.height}`];
  }],
  [/^tx\/(.+)$/, async ([id]) => [txView(await api(`/api/txs/${encodeURIComponent(id)}`)), "Transaction"]],
  [/^id\/(.+)$/, async ([identifier]) => {
    const path = pathOf(identifier);
    const [resolved, history] = await Promise.all([
      answer(`/api/handles/${path}?proof=true`),
      answer(`/api/history/${path}`),
    ]);
    const proof = resolved.body.proof;
    if (resolved.status === 404 && proof) {
      return [absentView(identifier, await verification(proof)), `${identifier} (not registered)`];
    }
    if (resolved.status !== 200 || history.status !== 200) {
      const failed = resolved.status !== 200 ? resolved : history;
      throw new ApiError(failed.status, failed.body.message || `HTTP ${failed.status}`);
    }
    // what is shown is what the proof covers (its record view), when there is a proof
    const shown = proof && proof.record ? proof.record.view : {
      owner: history.body.owner, status: history.body.status, values: resolved.body.values };
    const checked = proof ? await verification(proof) : null;
    return [identifierView(identifier, shown, history.body, checked), history.body.identifier];
  }],
  [/^prefix\/(.+)$/, async ([prefix], params) => {
    const after = params.get("after") || "";
    const page = await api(`/api/prefixes/${encodeURIComponent(prefix)}?${paging(params, "after")}`);
    return [prefixView(page, after, params.get("limit") || ""), `Prefix ${page.prefix}`];
  }],
  [/^account\/(.+)$/, async ([bid], params) => {
    const forward = new URLSearchParams({ limit: "50" });
    for (const key of ["prefixes_after", "identifiers_after"]) {
      if (params.get(key)) forward.set(key, params.get(key));
    }
    const account = await api(`/api/accounts/${encodeURIComponent(bid)}?${forward}`);
    return [accountView(account), "Account"];
  }],
  [/^search\/(.+)$/, async ([text], _, mine) => {
    document.getElementById("search-text").value = text;
    const found = await api(`/api/search?q=${encodeURIComponent(text)}`);
    const target = {
      identifier: href.id,
      prefix: href.prefix,
      account: href.account,
      block: href.block,
      tx: href.tx,
    }[found.kind](found.target);
    if (mine === navigation) location.replace(target);
    return null;
  }],
];

// the page's own query for the API: a page size (?limit=) and where a page starts
function paging(params, start) {
  const forward = new URLSearchParams({ limit: params.get("limit") || String(PAGE_SIZE) });
  if (params.get(start)) forward.set(start, params.get(start));
  return forward;
}

async function route() {
  if (location.hash && !location.hash.startsWith("#/")) return; // an in-page anchor
  const mine = ++navigation;
  const raw = location.hash.replace(/^#\/?/, "");
  const [path, search] = raw.split("?", 2);
  let decoded;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    showError("This link", { status: 400, message: "the address is not validly encoded" });
    return;
  }
  for (const [pattern, render] of routes) {
    const match = decoded.match(pattern);
    if (!match) continue;
    try {
      const shown = await render(match.slice(1), query(search), mine);
      if (shown && mine === navigation) show(shown[0], shown[1]);
    } catch (error) {
      if (mine !== navigation) return;
      if (pattern.source.startsWith("^search")) {
        const text = match[1];
        // an identifier that is not registered: its absence can be proven
        const absence = text.includes("/") && error.status === 404
          ? el("p", {}, el("a", { href: href.id(text) }, `Check that ${text} is not registered`))
          : null;
        show(
          [el("h1", { tabindex: -1 }, "Nothing found"), errorBox(`Nothing matched “${text}”: ${error.message}`), absence],
          "Nothing found",
        );
      } else {
        showError(decoded, error);
      }
    }
    return;
  }
  showError(decoded, { status: 404, message: "no such view; try the search box" });
}

// ---- verification: the genesis the visitor pinned, kept in this browser ----

const PINNED = "sparkchain.pinned-genesis";

function pinned(chainId) {
  return allPinned()[chainId] || null;
}

function allPinned() {
  try {
    return JSON.parse(localStorage.getItem(PINNED) || "{}");
  } catch {
    return {};
  }
}

function pin(genesis) {
  localStorage.setItem(PINNED, JSON.stringify({ ...allPinned(), [genesis.chain_id]: genesis }));
}

function unpin(chainId) {
  const all = allPinned();
  delete all[chainId];
  localStorage.setItem(PINNED, JSON.stringify(all));
}

// WebCrypto where the page has it, else the bundled noble libraries (crypto.js); the address's
// ?crypto=fallback asks for noble even where WebCrypto is there
let provider = null;
const checker = () => {
  provider ??= cryptoProvider(new URLSearchParams(location.search).get("crypto") === "fallback");
  return provider;
};

async function verification(bundle) {
  const { subtle, label } = await checker();
  const trusted = pinned(bundle.chain_id);
  const offered = trusted ? null : await api("/api/genesis");
  if ((trusted || offered).hash && (trusted || offered).hash !== "sha256") {
    // an SM3 chain (issue 16): the page cannot check it, and says so beside the record
    return proofBadge(await verifyBundle(bundle, trusted || offered, subtle), "(not hashed here)",
      label);
  }
  if (!trusted) {
    const again = () => route();
    return genesisPrompt(bundle.chain_id, await genesisHash(offered, subtle),
      () => { pin(offered); again(); },
      async (file) => {
        try {
          const loaded = JSON.parse(await file.text());
          if (loaded.chain_id !== bundle.chain_id) throw new Error(`it is of chain ${loaded.chain_id}`);
          await genesisHash(loaded, subtle);
          pin(loaded);
          again();
        } catch (error) {
          main.prepend(errorBox(`That genesis file cannot be pinned: ${error.message}`));
        }
      });
  }
  return proofBadge(await verifyBundle(bundle, trusted, subtle), await genesisHash(trusted, subtle),
    label);
}

// ---- the header ----

function showIdentity(status) {
  document.getElementById("node-name").textContent = status.node;
  document.getElementById("chain-id").textContent = status.chain_id;
  document.getElementById("head-height").textContent = String(status.height);
}

async function loadIdentity() {
  try {
    showIdentity(await api("/api/status"));
  } catch (error) {
    document.getElementById("node-name").textContent = "node unreachable";
  }
}

// ---- live blocks ----

function onBlock(block) {
  document.getElementById("head-height").textContent = String(block.height);
  const height = document.getElementById("network-height");
  if (height) height.textContent = String(block.height);
  const rows = document.getElementById("live-blocks");
  if (!rows || rows.querySelector(`tr[data-height="${block.height}"]`)) return;
  // the list keeps the length of a page
  rows.prepend(blockRow(block, true));
  while (rows.children.length > Number(rows.dataset.keep)) rows.lastElementChild.remove();
}

function listen() {
  const state = document.getElementById("live-state");
  const events = new EventSource("/api/events");
  events.addEventListener("open", () => { state.textContent = "● live"; });
  events.addEventListener("error", () => { state.textContent = "○ reconnecting"; });
  events.addEventListener("block", (event) => onBlock(JSON.parse(event.data)));
}

// ---- keyboard ----

// the skip link moves the focus without changing the address (the address is the view)
document.querySelector(".skip").addEventListener("click", (event) => {
  event.preventDefault();
  main.focus();
});

// ---- search ----

document.getElementById("search").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = document.getElementById("search-text").value.trim();
  if (!text) return;
  location.hash = `#/search/${encodeURIComponent(text)}`;
});

window.addEventListener("hashchange", route);
loadIdentity();
listen();
route();
