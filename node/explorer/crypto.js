// Which crypto checks proof bundles on this page. The browser's WebCrypto where the page has it
// (a secure context: HTTPS, or HTTP on localhost/127.0.0.1) and it does Ed25519; else the
// bundled noble libraries (vendor/: npm packages copied unmodified by `make explorer-vendor`),
// offered to verify.js behind the three SubtleCrypto calls it makes: digest("SHA-256"), and
// importKey and verify of Ed25519 raw public keys.
//
//   const provider = await cryptoProvider();          // cryptoProvider(true) forces noble
//   await verifyBundle(bundle, genesis, provider.subtle);
//   provider.label  // "WebCrypto", or "the bundled noble-ed25519 3.2.0 and noble-hashes
//                   //  2.4.0 (no WebCrypto on this page)"

// RFC 8032 §7.1's first public key: a valid point, to ask WebCrypto whether it does Ed25519
const PROBE_KEY = Uint8Array.from(
  "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a".match(/../g),
  (pair) => parseInt(pair, 16));

async function webCryptoEd25519(subtle) {
  if (!subtle) return false;
  try {
    await subtle.importKey("raw", PROBE_KEY, { name: "Ed25519" }, false, ["verify"]);
    return true;
  } catch {
    return false;
  }
}

async function nobleSubtle() {
  const [ed, sha2, { VERSIONS }] = await Promise.all([
    import("./vendor/noble-ed25519/index.js"),
    import("./vendor/noble-hashes/sha2.js"),
    import("./vendor/versions.js"),
  ]);
  // noble-ed25519's documented hook for its synchronous API's SHA-512
  ed.hashes.sha512 = sha2.sha512;
  const subtle = {
    async digest(algorithm, data) {
      if (algorithm !== "SHA-256") throw new Error(`the fallback has no ${algorithm}`);
      return sha2.sha256(new Uint8Array(data)).slice().buffer;
    },
    async importKey(format, keyData, algorithm) {
      if (format !== "raw" || algorithm?.name !== "Ed25519") {
        throw new Error("the fallback imports only raw Ed25519 public keys");
      }
      return { ed25519PublicKey: Uint8Array.from(keyData) };
    },
    async verify(algorithm, key, signature, data) {
      if (algorithm?.name !== "Ed25519") throw new Error("the fallback verifies only Ed25519");
      // zip215: false is RFC 8032's strict decoding (canonical points and S), as the node's
      // Ed25519 (OpenSSL) and the browsers' WebCrypto decode
      return ed.verify(Uint8Array.from(signature), Uint8Array.from(data), key.ed25519PublicKey,
        { zip215: false });
    },
  };
  return { subtle, versions: VERSIONS };
}

export async function cryptoProvider(forceFallback = false) {
  const native = globalThis.crypto?.subtle;
  if (!forceFallback && await webCryptoEd25519(native)) {
    return { subtle: native, name: "webcrypto", label: "WebCrypto" };
  }
  const why = forceFallback ? "the page was asked for it with ?crypto=fallback"
    : native ? "this browser's WebCrypto has no Ed25519" : "no WebCrypto on this page";
  const { subtle, versions } = await nobleSubtle();
  return { subtle, name: "noble",
    label: `the bundled noble-ed25519 ${versions["@noble/ed25519"]} and noble-hashes `
      + `${versions["@noble/hashes"]} (${why})` };
}
