// Written by `make explorer-vendor` (node/explorer_vendor.py) from
// node/explorer_deps/package-lock.json: the versions of the vendored packages.
export const VERSIONS = {"@noble/ed25519": "3.2.0", "@noble/hashes": "2.4.0"};
